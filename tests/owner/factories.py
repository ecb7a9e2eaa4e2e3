"""A small registry for ownership tests: one team, people in every role, three workloads."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from llmgov.models.registry import AuditEvent, Person, Team, Workload, WorkloadStatus

OWNER = "U0OWNER01"
BACKUP = "U0BACKUP1"
MEMBER = "U0MEMBER1"  # owns another workload of the same team: still no rights on this one
STRANGER = "U0STRANGE"
ADMIN = "U0ADMIN01"
NEWBIE = "U0NEWBIE1"
LEFT = "U0LEFT001"  # deactivated in Slack
ADMINS = frozenset({ADMIN})


@dataclass(frozen=True)
class Registry:
    owned: str = "search-summaries"  # owner + backup
    unowned: str = "query-rewrite"  # no owner
    discovered: str = "disc-claude-haiku"  # found in billing data
    orphaned: str = "legacy-ranker"  # owner has left
    members: str = "search-embeddings"  # owned by MEMBER, same team


def build_registry(session: Session) -> Registry:
    registry = Registry()
    team = Team(slug="search", name="Search", channel_id="C0SEARCH01")
    people = {
        sid: Person(slack_id=sid, name=name, active=sid != LEFT)
        for sid, name in [
            (OWNER, "Olivia Owner"),
            (BACKUP, "Ben Backup"),
            (MEMBER, "Mia Member"),
            (STRANGER, "Sam Stranger"),
            (ADMIN, "Ada Admin"),
            (LEFT, "Len Left"),
        ]
    }
    session.add(team)
    session.add_all(people.values())
    session.add_all(
        [
            Workload(
                slug=registry.owned,
                name="Search result summaries",
                team=team,
                owner=people[OWNER],
                backup_owner=people[BACKUP],
                budget_monthly=Decimal("4000"),
                exit_strategy="Prompts are model-agnostic",
            ),
            Workload(slug=registry.unowned, name="Query rewrite", team=team),
            Workload(
                slug=registry.discovered,
                status=WorkloadStatus.DISCOVERED.value,
                discovered_from="model_id:anthropic.claude-3-haiku",
            ),
            Workload(slug=registry.orphaned, name="Legacy ranker", team=team, owner=people[LEFT]),
            Workload(slug=registry.members, name="Embeddings", team=team, owner=people[MEMBER]),
        ]
    )
    session.commit()
    return registry


def audit_events(session: Session) -> list[AuditEvent]:
    session.expire_all()
    return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def count(session: Session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def workload(session: Session, slug: str) -> Workload:
    session.expire_all()
    return session.scalar(select(Workload).where(Workload.slug == slug))

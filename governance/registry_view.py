"""Read-only queries over the registry: workloads with their owners, and their ownership gaps.

Used by `llmgov demo`, `/llm-owner list` and `/llm-owner gaps`. The results are plain frozen
dataclasses (no ORM objects escape), so callers can render them after the session closes.
"""

from __future__ import annotations

import enum
import functools
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from llmgov.governance.people import parse_person_ref
from llmgov.models.base import plain_rows
from llmgov.models.errors import BadInput
from llmgov.models.registry import Person, Team, Workload, WorkloadStatus


class Gap(enum.StrEnum):
    """Why a workload's ownership or economics is not yet explicit (worst first)."""

    DISCOVERED = "discovered"  # found in the data, never registered
    UNOWNED = "unowned"
    OWNER_INACTIVE = "owner_inactive"  # the owner has left (Slack account deactivated)
    MISSING_BUDGET = "missing_budget"
    MISSING_EXIT_STRATEGY = "missing_exit_strategy"


GAP_LABELS = {
    Gap.DISCOVERED: "discovered, not registered",
    Gap.UNOWNED: "no owner",
    Gap.OWNER_INACTIVE: "owner has left",
    Gap.MISSING_BUDGET: "no budget",
    Gap.MISSING_EXIT_STRATEGY: "no exit strategy",
}


@dataclass(frozen=True)
class PersonView:
    slack_id: str | None
    email: str | None
    name: str | None
    active: bool

    @property
    def label(self) -> str:
        """A name for people: the name, else the email, else the Slack id."""
        return self.name or self.email or self.slack_id or "?"

    @property
    def ref(self) -> str:
        """How the registry file writes this person: Slack id when known, else email."""
        return self.slack_id or self.email or ""

    @classmethod
    def of(cls, person: Person | None) -> PersonView | None:
        if person is None:
            return None
        return cls(person.slack_id, person.email, person.name, bool(person.active))


@dataclass(frozen=True)
class WorkloadView:
    slug: str
    name: str | None
    platform: str
    status: str
    team: str | None  # team slug
    team_name: str | None
    team_channel: str | None
    owner: PersonView | None
    backup_owner: PersonView | None
    feature: str | None
    customer: str | None
    critical_path: bool
    budget_monthly: Decimal | None
    currency: str
    exit_strategy: str | None
    discovered_from: str | None
    gaps: tuple[Gap, ...]


def gaps_of(workload: Workload) -> tuple[Gap, ...]:
    """The ownership gaps of one workload; a retired workload has none."""
    owner = workload.owner
    return gaps_from(
        workload.status,
        None if owner is None else bool(owner.active),
        workload.budget_monthly is not None,
        bool((workload.exit_strategy or "").strip()),
    )


@functools.cache  # a few dozen combinations; listings ask for 10,000 workloads' gaps
def gaps_from(
    status: str, owner_active: bool | None, has_budget: bool, has_exit_strategy: bool
) -> tuple[Gap, ...]:
    """The one rule of ownership gaps, on the columns it reads (`owner_active` None: no
    owner), for callers that read columns rather than workloads. The checks, the gap
    review, `/llm-owner gaps`, `/llm-cost` and the demo all apply it.

    - A discovered workload has two gaps, `discovered` and `unowned`: it needs an owner
      before a budget or an exit strategy can be asked of anyone.
    - An experiment needs no exit strategy: it is meant to end (it needs a budget).
    - A retired workload has none."""
    if status == WorkloadStatus.RETIRED:
        return ()
    if status == WorkloadStatus.DISCOVERED:
        return (Gap.DISCOVERED, Gap.UNOWNED)
    gaps = []
    if owner_active is None:
        gaps.append(Gap.UNOWNED)
    elif not owner_active:
        gaps.append(Gap.OWNER_INACTIVE)
    if not has_budget:
        gaps.append(Gap.MISSING_BUDGET)
    if not has_exit_strategy and status != WorkloadStatus.EXPERIMENT:
        gaps.append(Gap.MISSING_EXIT_STRATEGY)
    return tuple(gaps)


def view_of(workload: Workload) -> WorkloadView:
    team = workload.team
    return WorkloadView(
        slug=workload.slug,
        name=workload.name,
        platform=workload.platform,
        status=workload.status,
        team=team.slug if team else None,
        team_name=team.name if team else None,
        team_channel=team.channel_id if team else None,
        owner=PersonView.of(workload.owner),
        backup_owner=PersonView.of(workload.backup_owner),
        feature=workload.feature,
        customer=workload.customer,
        critical_path=bool(workload.critical_path),
        budget_monthly=workload.budget_monthly,
        currency=workload.currency,
        exit_strategy=workload.exit_strategy,
        discovered_from=workload.discovered_from,
        gaps=gaps_of(workload),
    )


_OWNER = aliased(Person)
_BACKUP = aliased(Person)
# One row per workload with its team and both people, read as plain columns: a listing of
# 10,000 workloads through ORM objects took ~0.6 s and left 10,000s of objects for the
# garbage collector to walk.
_PERSON_COLUMNS = (_OWNER.id, _OWNER.slack_id, _OWNER.email, _OWNER.name, _OWNER.active)
_BACKUP_COLUMNS = (_BACKUP.id, _BACKUP.slack_id, _BACKUP.email, _BACKUP.name, _BACKUP.active)
_WORKLOAD_COLUMNS = (
    Workload.slug,
    Workload.name,
    Workload.platform,
    Workload.status,
    Team.slug,
    Team.name,
    Team.channel_id,
    Workload.feature,
    Workload.customer,
    Workload.critical_path,
    Workload.budget_monthly,
    Workload.currency,
    Workload.exit_strategy,
    Workload.discovered_from,
)


def _person_of(columns: tuple) -> PersonView | None:
    person_id, slack_id, email, name, active = columns
    return None if person_id is None else PersonView(slack_id, email, name, bool(active))


def _view_of_row(row: tuple) -> WorkloadView:
    (slug, name, platform, status, team, team_name, team_channel, feature, customer) = row[:9]
    critical_path, budget, currency, exit_strategy, discovered_from = row[9:14]
    owner, backup = _person_of(row[14:19]), _person_of(row[19:24])
    return WorkloadView(
        slug=slug,
        name=name,
        platform=platform,
        status=status,
        team=team,
        team_name=team_name,
        team_channel=team_channel,
        owner=owner,
        backup_owner=backup,
        feature=feature,
        customer=customer,
        critical_path=bool(critical_path),
        budget_monthly=budget,
        currency=currency,
        exit_strategy=exit_strategy,
        discovered_from=discovered_from,
        gaps=gaps_from(
            status,
            None if owner is None else owner.active,
            budget is not None,
            bool((exit_strategy or "").strip()),
        ),
    )


def _query(session: Session, *, team: str | None, owner: str | None, include_retired: bool):
    query = (
        select(*_WORKLOAD_COLUMNS, *_PERSON_COLUMNS, *_BACKUP_COLUMNS)
        .outerjoin(Team, Team.id == Workload.team_id)
        .outerjoin(_OWNER, _OWNER.id == Workload.owner_id)
        .outerjoin(_BACKUP, _BACKUP.id == Workload.backup_owner_id)
    )
    if team is not None:
        team_row = session.scalar(select(Team).where(Team.slug == team))
        if team_row is None:
            known = ", ".join(session.scalars(select(Team.slug).order_by(Team.slug))) or "none yet"
            raise BadInput(f"unknown team {team!r}; teams: {known}")
        query = query.where(Workload.team_id == team_row.id)
    if owner is not None:
        slack_id, email = parse_person_ref(owner)
        person_ids = select(Person.id).where(
            Person.slack_id == slack_id if slack_id else Person.email == email
        )
        query = query.where(
            or_(Workload.owner_id.in_(person_ids), Workload.backup_owner_id.in_(person_ids))
        )
    if not include_retired:
        query = query.where(Workload.status != WorkloadStatus.RETIRED.value)
    return query


def list_workloads(
    session: Session,
    *,
    team: str | None = None,
    owner: str | None = None,
    include_retired: bool = False,
) -> list[WorkloadView]:
    """Workloads ordered by team (team-less last) then slug.

    `team` is a team slug (BadInput if unknown, listing the teams); `owner` a Slack user id,
    `<@U...>` mention or email, matching the owner or the backup owner.
    """
    query = _query(session, team=team, owner=owner, include_retired=include_retired)
    views = [_view_of_row(tuple(row)) for row in plain_rows(session, query)]
    return sorted(views, key=lambda view: (view.team is None, view.team or "", view.slug))


def list_gaps(
    session: Session, *, team: str | None = None, owner: str | None = None
) -> list[WorkloadView]:
    """The workloads with at least one ownership gap, worst gaps first, then by team and slug."""
    views = [view for view in list_workloads(session, team=team, owner=owner) if view.gaps]
    order = list(Gap)
    return sorted(
        views,
        key=lambda view: (order.index(view.gaps[0]), view.team is None, view.team or "", view.slug),
    )


def count_gaps(views: Iterable[WorkloadView]) -> dict[Gap, int]:
    """How many workloads have each gap, in Gap order (zero counts included)."""
    counts = Counter(gap for view in views for gap in view.gaps)
    return {gap: counts.get(gap, 0) for gap in Gap}


def group_by_team(views: Iterable[WorkloadView]) -> list[tuple[str | None, list[WorkloadView]]]:
    """Views grouped by team slug in the order given (None: workloads without a team)."""
    groups: dict[str | None, list[WorkloadView]] = {}
    for view in views:
        groups.setdefault(view.team, []).append(view)
    return list(groups.items())


__all__ = [
    "GAP_LABELS",
    "Gap",
    "PersonView",
    "WorkloadView",
    "count_gaps",
    "gaps_from",
    "gaps_of",
    "group_by_team",
    "list_gaps",
    "list_workloads",
    "view_of",
]

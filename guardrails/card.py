"""What the breaker message shows, as data (rendered to Block Kit by `bot/blocks/breaker.py`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session, sessionmaker

from llmgov.governance.ownership import get_workload
from llmgov.guardrails.actions import breaker_policy
from llmgov.guardrails.aws import KEEPS_BILLING, describe, describe_undo, plan_trip
from llmgov.guardrails.state import Status, load_state
from llmgov.models.registry import Person, Workload


@dataclass(frozen=True)
class PersonRef:
    slack_id: str | None
    label: str
    active: bool = True


@dataclass(frozen=True)
class BreakerCard:
    slug: str
    name: str | None
    platform: str
    owner: PersonRef | None
    backup_owner: PersonRef | None
    budget: Decimal | None
    currency: str
    status: Status
    since: datetime | None
    by: str | None  # Slack user id, or "system"
    ignored_until: datetime | None
    triggers: tuple[str, ...]  # one line per reason it fired
    enabled: bool  # False: dry-run, nothing is done in AWS
    plan: tuple[str, ...]  # what Trip does (armed/fired/ignored) or did (tripped)
    undo: tuple[str, ...]  # what Reset will do (tripped only)
    tripped_dry_run: bool  # the trip in force was a dry run
    firing_id: str | None
    suggested_budget: Decimal | None  # for the Raise budget modal
    keeps_billing: tuple[str, ...] = KEEPS_BILLING  # what no trip stops
    would_trip: str | None = None  # the last dry-run Trip: who and when, for the card
    stopped_by: str | None = None  # the workload whose trip stops this one too (shared role)
    reset_request: dict | None = None  # a reset asked for: by, reason, at
    confirmation: dict | None = None  # the check that the deny is in force (guardrails.confirm)


def breaker_card(workload: Workload, now: datetime) -> BreakerCard:
    """The card for `workload` as of `now` (its breaker must be configured)."""
    policy = breaker_policy(workload)
    if policy is None:
        raise ValueError(f"{workload.slug} has no circuit breaker")
    state = load_state(workload).effective(now)
    if state.status in (Status.TRIPPED, Status.TRIPPING, Status.RESETTING):
        plan = tuple(describe(action) for action in state.applied)
        undo = tuple(describe_undo(action) for action in state.applied)
    else:
        plan = tuple(describe(action) for action in plan_trip(workload.slug, policy))
        undo = ()
    return BreakerCard(
        slug=workload.slug,
        name=workload.name,
        platform=workload.platform,
        owner=_ref(workload.owner),
        backup_owner=_ref(workload.backup_owner),
        budget=workload.budget_monthly,
        currency=workload.currency,
        status=state.status,
        since=state.since,
        by=state.by,
        ignored_until=state.ignored_until,
        triggers=tuple(str(trigger.get("summary", "")) for trigger in state.triggers),
        enabled=policy.enabled,
        plan=plan,
        undo=undo,
        tripped_dry_run=state.status is Status.TRIPPED and state.dry_run,
        firing_id=state.firing_id,
        suggested_budget=_suggested_budget(workload.budget_monthly, state.triggers),
        would_trip=_would_trip(state.would_trip),
        stopped_by=state.stopped_by,
        reset_request=state.reset_request,
        confirmation=state.confirmation,
    )


def load_card(session_factory: sessionmaker[Session], slug: str, now: datetime) -> BreakerCard:
    """The card of workload `slug` as stored now (BadInput when unknown)."""
    with session_factory() as session:
        return breaker_card(get_workload(session, slug), now)


def _would_trip(record: dict | None) -> str | None:
    if not record:
        return None
    return f"<@{record.get('by')}> pressed Trip at {str(record.get('at', ''))[:16]} UTC (dry run)"


def _ref(person: Person | None) -> PersonRef | None:
    if person is None:
        return None
    return PersonRef(person.slack_id, person.label, person.active)


def _suggested_budget(budget: Decimal | None, triggers: tuple[dict, ...]) -> Decimal | None:
    """The projected month-end, rounded up to a round figure: a budget that would not fire."""
    if budget is None:
        return None
    pcts = [float(t["value"]) for t in triggers if t.get("kind") == "projected_over_budget"]
    if not pcts:
        return None
    projected = float(budget) * max(pcts) / 100.0
    step = 10 ** max(int(math.log10(projected)) - 1, 0) if projected >= 1 else 1
    return Decimal(math.ceil(projected / step) * step)


__all__ = ["BreakerCard", "PersonRef", "breaker_card", "load_card"]

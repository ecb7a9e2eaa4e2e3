"""The breaker's decisions: fire (the check job), Trip, Reset, Ignore 24h, Raise budget (people).

Each person's action runs in one transaction: lock the workload row, check who may act
(`governance.permissions`), check the state allows it, act in AWS (or, in dry-run, only plan),
store the new state and audit it with before/after. A refusal is audited and changes nothing.
An AWS failure leaves the state as it was, is audited as `failed`, and its message says what
to do. If the database write fails after AWS acted, the AWS change is undone.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session, sessionmaker

from llmgov.governance import audit
from llmgov.governance.ownership import get_workload, lock_workload, set_budget
from llmgov.governance.permissions import Action, Decision, authorise
from llmgov.guardrails.aws import (
    BreakerActionError,
    ClientFactory,
    apply_all,
    describe,
    describe_undo,
    plan_trip,
    registry_clients,
    undo_all,
)
from llmgov.guardrails.policy import BreakerPolicy, FindingLike, Trigger, evaluate, parse_policy
from llmgov.guardrails.state import BreakerState, Status, load_state, store_state
from llmgov.models.base import transaction
from llmgov.models.errors import BadInput
from llmgov.models.registry import Workload

IGNORE_HOURS = 24
SYSTEM = "system"

# Who may act on a breaker is who may set the workload's budget: the owner, the backup owner
# or a governance admin (issue 7). The rule lives in governance.permissions, once.
BREAKER_RULE = Action.SET_BUDGET

AUDIT_ACTIONS = {
    "trip": "breaker.trip",
    "reset": "breaker.reset",
    "ignore": "breaker.ignore",
    "fire": "breaker.fire",
    "rearm": "breaker.rearm",
    "raise_budget": "budget.set",  # the same audit action as any other budget change
}
VERBS = {
    "trip": "trip the circuit breaker of",
    "reset": "reset the circuit breaker of",
    "ignore": "ignore the circuit breaker of",
    "raise_budget": "raise the budget of",
}


class Result(enum.StrEnum):
    APPLIED = "applied"  # done in AWS (or nothing in AWS was needed)
    DRY_RUN = "dry_run"  # recorded what would be done; nothing in AWS
    UNCHANGED = "unchanged"  # the breaker already was in the asked-for state
    REFUSED = "refused"  # the actor may not do this (audited)
    FAILED = "failed"  # AWS refused or failed; state unchanged (audited)


@dataclass(frozen=True)
class Outcome:
    result: Result
    message: str  # one line for the person who clicked
    slug: str
    state: BreakerState | None = None

    @property
    def ok(self) -> bool:
        return self.result in (Result.APPLIED, Result.DRY_RUN, Result.UNCHANGED)


def breaker_policy(workload: Workload) -> BreakerPolicy | None:
    return parse_policy(workload.breaker, where=f"workload {workload.slug} breaker")


def require_policy(workload: Workload) -> BreakerPolicy:
    policy = breaker_policy(workload)
    if policy is None:
        raise BadInput(
            f"{workload.slug} has no circuit breaker. Add one in the registry file, e.g. "
            "`breaker: {projected_over_budget_pct: 150}` under the workload, and import it."
        )
    return policy


# ---- people's actions ------------------------------------------------------------------


def trip(
    session_factory: sessionmaker[Session],
    slug: str,
    *,
    actor: str,
    admins: Collection[str],
    now: datetime,
    clients: ClientFactory | None = None,
) -> Outcome:
    """Stop the workload's spend: the IAM deny and/or the SSM switch (dry-run: only record)."""
    applied: list[dict] = []
    dry_run = True
    try:
        with transaction(session_factory) as session:
            workload = lock_workload(session, slug)
            policy = require_policy(workload)
            refused = _authorise(session, actor, "trip", workload, admins)
            if refused:
                return refused
            before = load_state(workload).effective(now)
            if before.status is Status.TRIPPED:
                return Outcome(
                    Result.UNCHANGED,
                    f"The breaker of {workload.slug} is already tripped "
                    f"(by {_who(before.by)} at {_when(before.since)}).",
                    workload.slug,
                    before,
                )
            plan = plan_trip(workload.slug, policy)
            if not plan:
                raise BadInput(
                    f"The breaker of {workload.slug} has nothing to switch off: set "
                    "`principal` (an IAM role or user ARN) or `ssm_parameter` in its `breaker:` "
                    "entry in the registry file, and import it."
                )
            dry_run = policy.dry_run
            clients = clients or registry_clients(session)
            applied = plan if dry_run else apply_all(plan, clients)
            after = BreakerState(
                status=Status.TRIPPED,
                since=now,
                by=actor,
                firing_id=before.firing_id,
                triggers=before.triggers,
                dry_run=dry_run,
                applied=tuple(applied),
            )
            done = "; ".join(describe(action) for action in applied)
            _change(session, actor, "trip", workload, before, after, done)
            message = (
                f"Dry run: the breaker of {workload.slug} is not enabled in the registry, so "
                f"nothing was changed in AWS. Trip would {done}."
                if dry_run
                else f"Tripped the breaker of {workload.slug}. In force: {done}."
            )
            result = Result.DRY_RUN if dry_run else Result.APPLIED
            return Outcome(result, message, workload.slug, after)
    except BreakerActionError as error:
        return _failed(session_factory, actor, "trip", slug, error)
    except Exception:
        # The database write failed after AWS acted: take the AWS change back.
        if applied and not dry_run and clients is not None:
            undo_all(applied, clients, raise_on_error=False)
        raise


def reset(
    session_factory: sessionmaker[Session],
    slug: str,
    *,
    actor: str,
    admins: Collection[str],
    now: datetime,
    clients: ClientFactory | None = None,
) -> Outcome:
    """Undo exactly what Trip did (recorded in the state), then arm the breaker again.

    Undoing is idempotent in AWS, so if the database write fails after it, clicking Reset
    again is safe.
    """
    try:
        with transaction(session_factory) as session:
            workload = lock_workload(session, slug)
            require_policy(workload)
            refused = _authorise(session, actor, "reset", workload, admins)
            if refused:
                return refused
            before = load_state(workload).effective(now)
            if before.status is not Status.TRIPPED:
                return Outcome(
                    Result.UNCHANGED,
                    f"The breaker of {workload.slug} is not tripped ({before.status}); "
                    "there is nothing to reset.",
                    workload.slug,
                    before,
                )
            applied = list(before.applied)
            if not before.dry_run:
                undo_all(applied, clients or registry_clients(session))
            after = BreakerState(status=Status.ARMED, since=now, by=actor)
            done = "; ".join(describe_undo(action) for action in applied) or "nothing to undo"
            _change(session, actor, "reset", workload, before, after, done)
            if before.dry_run:
                message = (
                    f"Reset the breaker of {workload.slug} (dry run: nothing was changed in AWS; "
                    f"Reset would {done})."
                )
                return Outcome(Result.DRY_RUN, message, workload.slug, after)
            return Outcome(
                Result.APPLIED,
                f"Reset the breaker of {workload.slug}, so spend is no longer blocked. "
                f"Undone in AWS: {done}.",
                workload.slug,
                after,
            )
    except BreakerActionError as error:
        return _failed(session_factory, actor, "reset", slug, error)


def ignore(
    session_factory: sessionmaker[Session],
    slug: str,
    *,
    actor: str,
    admins: Collection[str],
    now: datetime,
    hours: int = IGNORE_HOURS,
) -> Outcome:
    """Keep the breaker quiet for `hours`; after that it may fire again."""
    with transaction(session_factory) as session:
        workload = lock_workload(session, slug)
        require_policy(workload)
        refused = _authorise(session, actor, "ignore", workload, admins)
        if refused:
            return refused
        before = load_state(workload).effective(now)
        if before.status is Status.TRIPPED:
            return Outcome(
                Result.UNCHANGED,
                f"The breaker of {workload.slug} is tripped; Reset it to let spend through, "
                "ignoring it would not.",
                workload.slug,
                before,
            )
        until = now + timedelta(hours=hours)
        after = replace(
            before, status=Status.IGNORED, since=now, by=actor, ignored_until=until, applied=()
        )
        _change(session, actor, "ignore", workload, before, after, f"ignored for {hours} h")
        return Outcome(
            Result.APPLIED,
            f"Ignoring the breaker of {workload.slug} until {_when(until)}; "
            "it may fire again after that.",
            workload.slug,
            after,
        )


def raise_budget(
    session_factory: sessionmaker[Session],
    slug: str,
    amount: Decimal,
    *,
    actor: str,
    admins: Collection[str],
    now: datetime,
) -> Outcome:
    """Set a higher monthly budget (audited as `budget.set`) and arm the breaker again."""
    with transaction(session_factory) as session:
        workload = lock_workload(session, slug)
        current = workload.budget_monthly
        allowed = authorise(actor, Action.SET_BUDGET, workload, admins)
        if allowed and current is not None and amount <= current:
            raise BadInput(
                f"{amount:,} is not higher than the current budget of {workload.slug} "
                f"({current:,.2f} {workload.currency}); enter a higher monthly amount."
            )
        change = set_budget(session, actor, workload.slug, amount, admins)
        if not change.applied:
            return Outcome(Result.REFUSED, _refusal_text(change.reason), workload.slug)
        before = load_state(workload).effective(now)
        after = before
        if before.status in (Status.FIRED, Status.IGNORED):
            after = BreakerState(status=Status.ARMED, since=now, by=actor)
            _change(session, actor, "rearm", workload, before, after, "budget raised")
        return Outcome(
            Result.APPLIED,
            f"Raised the monthly budget of {workload.slug} to {amount:,.2f} {workload.currency}"
            + ("; the breaker is armed again." if after is not before else "."),
            workload.slug,
            after,
        )


def may_act(
    session_factory: sessionmaker[Session],
    slug: str,
    verb: str,
    *,
    actor: str,
    admins: Collection[str],
) -> Outcome | None:
    """None when `actor` may `verb` ("trip", "reset", "ignore", "raise_budget") the breaker
    of `slug`; otherwise the refusal, audited. For asking before opening a modal."""
    with transaction(session_factory) as session:
        workload = get_workload(session, slug)
        require_policy(workload)
        return _authorise(session, actor, verb, workload, admins)


# ---- the check job ---------------------------------------------------------------------


def observe(
    session: Session, workload: Workload, findings: Iterable[FindingLike], now: datetime
) -> tuple[BreakerState, list[Trigger]] | None:
    """Move the breaker on from this check's findings; the new state when it *newly* fired.

    Armed (or an expired ignore) with a trigger: fired. Fired with no trigger any more:
    armed again. Tripped and ignored stay as they are. Adds to `session`; does not commit.
    """
    policy = breaker_policy(workload)
    if policy is None:
        return None
    before = load_state(workload).effective(now)
    triggers = evaluate(policy, findings, workload.slug)
    if before.status is Status.ARMED and triggers:
        after = BreakerState(
            status=Status.FIRED,
            since=now,
            by=SYSTEM,
            firing_id=now.strftime("%Y%m%dT%H%M%SZ"),
            triggers=tuple(trigger.to_json() for trigger in triggers),
        )
        reason = "; ".join(trigger.summary for trigger in triggers)
        _change(session, SYSTEM, "fire", workload, before, after, reason)
        return after, triggers
    if before.status is Status.FIRED and not triggers:
        after = BreakerState(status=Status.ARMED, since=now, by=SYSTEM)
        _change(session, SYSTEM, "rearm", workload, before, after, "the condition cleared")
    return None


# ---- shared steps ----------------------------------------------------------------------


def _authorise(
    session: Session, actor: str, verb: str, workload: Workload, admins: Collection[str]
) -> Outcome | None:
    """None when `actor` may act; otherwise the refusal, audited."""
    decision: Decision = authorise(actor, BREAKER_RULE, workload, admins)
    if decision:
        return None
    reason = _refusal_text(_who_may(workload, verb))
    audit.refusal(
        session,
        actor=actor,
        action=AUDIT_ACTIONS[verb],
        entity="workload",
        entity_key=workload.slug,
        reason=reason,
    )
    return Outcome(Result.REFUSED, reason, workload.slug)


def _who_may(workload: Workload, verb: str) -> str:
    names = []
    if workload.owner is not None:
        names.append(f"the owner {_person(workload.owner)}")
    if workload.backup_owner is not None:
        names.append(f"the backup owner {_person(workload.backup_owner)}")
    names.append("a governance admin")
    listed = ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]
    return f"only {listed} can {VERBS[verb]} {workload.slug}"


def _refusal_text(reason: str) -> str:
    return reason[:1].upper() + reason[1:] + "."


def _person(person) -> str:
    return f"<@{person.slack_id}>" if person.slack_id else person.label


def _change(
    session: Session,
    actor: str,
    verb: str,
    workload: Workload,
    before: BreakerState,
    after: BreakerState,
    reason: str,
) -> None:
    store_state(workload, after)
    audit.record(
        session,
        actor=actor,
        action=AUDIT_ACTIONS[verb],
        entity="workload",
        entity_key=workload.slug,
        before=before.to_json(),
        after=after.to_json(),
        reason=reason,
    )


def _failed(
    session_factory: sessionmaker[Session], actor: str, verb: str, slug: str, error: Exception
) -> Outcome:
    slug = slug.strip().lower()
    message = f"{error} The breaker of {slug} was left as it was."
    with transaction(session_factory) as session:
        audit.record(
            session,
            actor=actor,
            action=AUDIT_ACTIONS[verb],
            entity="workload",
            entity_key=slug,
            outcome="failed",
            reason=message,
        )
    return Outcome(Result.FAILED, message, slug)


def _who(actor: str | None) -> str:
    if not actor:
        return "someone"
    return "the check job" if actor == SYSTEM else f"<@{actor}>"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "an unknown time"


__all__ = [
    "IGNORE_HOURS",
    "Outcome",
    "Result",
    "breaker_policy",
    "ignore",
    "lock_workload",
    "may_act",
    "observe",
    "raise_budget",
    "require_policy",
    "reset",
    "trip",
]

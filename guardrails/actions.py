"""The breaker's decisions: fire (the check job), Trip, Reset, Ignore 24h, Raise budget (people).

Each person's action runs in one transaction: lock the workload row, check who may act
(`governance.permissions`), check the state allows it, act in AWS (or, in dry-run, only plan),
store the new state and audit it with before/after. A refusal is audited and changes nothing.
An AWS failure leaves the state as it was, is audited as `failed`, and its message says what
to do. If the database write fails after AWS acted, the AWS change is undone.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from llmgov.governance import audit
from llmgov.governance.breaker_policy import (
    STATE_KEY,
    BreakerPolicy,
    FindingLike,
    Trigger,
    evaluate,
    parse_policy,
    principal_arns,
)
from llmgov.governance.ownership import get_workload, lock_workload, set_budget
from llmgov.governance.permissions import Action, Decision, authorise
from llmgov.guardrails.aws import (
    BreakerActionError,
    ClientFactory,
    apply_all,
    describe,
    describe_undo,
    plan_trip,
    prepare,
    registry_clients,
    undo_all,
)
from llmgov.guardrails.state import (
    IN_PROGRESS,
    BreakerState,
    Status,
    load_state,
    restore_state,
    store_state,
)
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
    "request_reset": "breaker.reset_request",
    "ignore": "breaker.ignore",
    "fire": "breaker.fire",
    "rearm": "breaker.rearm",
    "raise_budget": "budget.set",  # the same audit action as any other budget change
}
VERBS = {
    "trip": "trip the circuit breaker of",
    "reset": "reset the circuit breaker of",
    "request_reset": "ask to reset the circuit breaker of",
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
    also: tuple[str, ...] = ()  # other workloads whose state changed with it (shared roles)

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


# Steps of a trip and a reset where a test may stop the process (tests/guardrails/test_crash.py
# sets this to a function that SIGKILLs itself at one of them); a no-op otherwise.
def _no_checkpoint(step: str) -> None:
    return None


CHECKPOINT: Callable[[str], None] = _no_checkpoint
# An intent older than this is taken as abandoned (its process died) by the reconciler.
INTENT_TIMEOUT = timedelta(minutes=5)


def trip(
    session_factory: sessionmaker[Session],
    slug: str,
    *,
    actor: str,
    admins: Collection[str],
    now: datetime,
    clients: ClientFactory | None = None,
) -> Outcome:
    """Stop the workload's spend: the IAM deny and/or the SSM switch (dry-run: only record).

    Three steps: (1) commit a "tripping" intent holding the plan, the original values and the
    state to go back to; (2) act in AWS; (3) commit "tripped". If anything ends the process
    between (1) and (3), the intent is undone on the way out, or (SIGKILL, power loss) by
    the reconciler."""
    with transaction(session_factory) as session:
        workload = lock_workload(session, slug)
        policy = require_policy(workload)
        refused = _authorise(session, actor, "trip", workload, admins)
        if refused:
            return refused
        before = load_state(workload).effective(now)
        stored = (workload.breaker or {}).get(STATE_KEY)
        busy = _busy(workload.slug, before)
        if busy:
            return busy
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
        if policy.dry_run:
            return _dry_run_trip(session, actor, workload, before, plan, now)
        clients = clients or registry_clients(session, actor)
        try:
            plan = prepare(plan, clients)
        except BreakerActionError as error:
            failure = error
        else:
            failure = None
            intent = BreakerState(
                status=Status.TRIPPING,
                since=now,
                by=actor,
                firing_id=before.firing_id,
                triggers=before.triggers,
                applied=tuple(plan),
                previous=before.to_json(),
            )
            store_state(workload, intent)
    if failure is not None:
        return _failed(session_factory, actor, "trip", slug, failure)
    CHECKPOINT("trip:intent")

    applied: list[dict] = []
    finished = False
    try:
        apply_all(
            plan, clients, applied=applied, after_each=lambda i, _: CHECKPOINT(f"trip:aws:{i}")
        )
        CHECKPOINT("trip:before-commit")
        with transaction(session_factory) as session:
            workload = lock_workload(session, slug)
            after = BreakerState(
                status=Status.TRIPPED,
                since=now,
                by=actor,
                firing_id=before.firing_id,
                triggers=before.triggers,
                applied=tuple(applied),
            )
            done = "; ".join(describe(action) for action in applied)
            also = _mark_shared(session, workload, actor, stopped_by=workload.slug)
            if also:
                done += (
                    f". This also stops {', '.join(also)}, which share(s) the denied "
                    "role or user; their cards say so"
                )
            _change(session, actor, "trip", workload, before, after, done)
            slug = workload.slug
        finished = True
    except BreakerActionError as error:  # apply_all undid its own part already
        _return_to(session_factory, slug, stored)
        return _failed(session_factory, actor, "trip", slug, error)
    finally:
        if not finished and applied:
            # Anything else (a bug, the database, SIGTERM/Ctrl-C): take the AWS change back
            # and forget the intent, so nothing is left blocked that nobody can see.
            undo_all(applied, clients, raise_on_error=False)
            _return_to(session_factory, slug, stored)
    CHECKPOINT("trip:done")
    return Outcome(
        Result.APPLIED,
        f"Tripped the breaker of {slug}. Applied: {done}. Not confirmed yet: IAM changes take "
        "effect within minutes; the card says when the deny is confirmed.",
        slug,
        after,
        also=tuple(also),
    )


MIN_REASON = 5  # characters: "ok" is no reason


def request_reset(
    session_factory: sessionmaker[Session],
    slug: str,
    *,
    actor: str,
    admins: Collection[str],
    now: datetime,
    reason: str,
) -> Outcome:
    """Ask for a reset, with a reason; a governance admin other than the one asking (and
    other than an admin who tripped it) approves it, which runs `reset`. Two people, always."""
    reason = " ".join(str(reason or "").split())
    if len(reason) < MIN_REASON:
        raise BadInput(
            "Say why the breaker should be reset (what changed, or why the spend is "
            "expected); an admin reads it before approving."
        )
    with transaction(session_factory) as session:
        workload = lock_workload(session, slug)
        require_policy(workload)
        refused = _authorise(session, actor, "request_reset", workload, admins)
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
        request = {"by": actor, "reason": reason[:500], "at": now.isoformat()}
        after = replace(before, reset_request=request)
        store_state(workload, after)
        audit.record(
            session,
            actor=actor,
            action=AUDIT_ACTIONS["request_reset"],
            entity="workload",
            entity_key=workload.slug,
            before=before.to_json(),
            after=after.to_json(),
            reason=reason[:500],
        )
        return Outcome(
            Result.APPLIED,
            f"Asked to reset the breaker of {workload.slug}. A governance admin other than "
            "you approves it from the card (Approve reset).",
            workload.slug,
            after,
        )


def _approval_refusal(
    session: Session, actor: str, workload: Workload, state: BreakerState, admins: Collection[str]
) -> Outcome | None:
    """None when `actor` may approve the pending reset (two people: never the one asking,
    never an admin resetting their own trip); otherwise the refusal, audited."""
    request = state.reset_request
    if request is None:
        reason = (
            f"Resetting the breaker of {workload.slug} needs a reason and an admin's "
            "approval: press Reset and say why; a governance admin then approves it."
        )
    elif actor not in admins:
        reason = f"Only a governance admin can approve the reset of {workload.slug}."
    elif actor == request.get("by"):
        reason = "You asked for this reset; another governance admin approves it."
    elif actor == state.by:
        reason = "You tripped this breaker; another governance admin approves its reset."
    else:
        return None
    return _refused(session, actor, "reset", workload, reason)


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

    A "resetting" intent is committed first; an interrupted reset is finished by the
    reconciler (the person asked for it). Only what is still exactly the breaker's is
    removed or restored."""
    with transaction(session_factory) as session:
        workload = lock_workload(session, slug)
        require_policy(workload)
        refused = _authorise(session, actor, "reset", workload, admins)
        if refused:
            return refused
        before = load_state(workload).effective(now)
        stored = (workload.breaker or {}).get(STATE_KEY)
        busy = _busy(workload.slug, before)
        if busy:
            return busy
        if before.status is not Status.TRIPPED:
            return Outcome(
                Result.UNCHANGED,
                f"The breaker of {workload.slug} is not tripped ({before.status}); "
                "there is nothing to reset.",
                workload.slug,
                before,
            )
        if not before.dry_run:
            refused = _approval_refusal(session, actor, workload, before, admins)
            if refused:
                return refused
        approval = (
            f" (asked by {_who(before.reset_request.get('by'))}: "
            f"\u201c{before.reset_request.get('reason')}\u201d; approved by {_who(actor)})"
            if before.reset_request
            else ""
        )
        applied = list(before.applied)
        slug = workload.slug
        if before.dry_run:  # a dry-run trip from before dry runs stopped tripping
            after = BreakerState(status=Status.ARMED, since=now, by=actor)
            _change(session, actor, "reset", workload, before, after, "nothing to undo")
            return Outcome(
                Result.DRY_RUN,
                f"Reset the breaker of {slug} (dry run: nothing was changed in AWS).",
                slug,
                after,
            )
        clients = clients or registry_clients(session, actor)
        intent = replace(before, status=Status.RESETTING, since=now, by=actor)
        store_state(workload, replace(intent, previous=before.to_json()))
    CHECKPOINT("reset:intent")
    try:
        notes = undo_all(applied, clients, after_each=lambda i, _: CHECKPOINT(f"reset:aws:{i}"))
    except BreakerActionError as error:
        _return_to(session_factory, slug, stored)
        return _failed(session_factory, actor, "reset", slug, error)
    except BaseException:
        _return_to(session_factory, slug, stored)
        raise
    CHECKPOINT("reset:before-commit")
    with transaction(session_factory) as session:
        workload = lock_workload(session, slug)
        after = BreakerState(status=Status.ARMED, since=now, by=actor)
        done = "; ".join(describe_undo(action) for action in applied) or "nothing to undo"
        if notes:
            done += ". Left alone: " + "; ".join(notes)
        done += approval
        also = _mark_shared(session, workload, actor, stopped_by=None)
        _change(session, actor, "reset", workload, before, after, done)
    return Outcome(
        Result.APPLIED,
        f"Reset the breaker of {slug}, so spend is no longer blocked. Undone in AWS: {done}.",
        slug,
        after,
        also=tuple(also),
    )


def _mark_shared(
    session: Session, workload: Workload, actor: str, *, stopped_by: str | None
) -> list[str]:
    """Workloads whose breakers name a principal this one's trip denies: mark them stopped
    by it (`stopped_by`), or unmark them on reset. Returns their slugs."""
    policy = breaker_policy(workload)
    denied = principal_arns(policy) if policy else set()
    if not denied:
        return []
    changed = []
    others = session.scalars(
        select(Workload).where(Workload.slug != workload.slug, Workload.breaker.is_not(None))
    )
    for other in others:
        try:
            other_policy = breaker_policy(other)
        except BadInput:
            continue
        if other_policy is None or not denied & principal_arns(other_policy):
            continue
        state = load_state(other)
        if stopped_by is None and state.stopped_by != workload.slug:
            continue
        store_state(other, replace(state, stopped_by=stopped_by))
        audit.record(
            session,
            actor=actor,
            action="breaker.shared_stop" if stopped_by else "breaker.shared_release",
            entity="workload",
            entity_key=other.slug,
            reason=(
                f"the trip of {workload.slug} denies a role or user {other.slug} uses"
                if stopped_by
                else f"the reset of {workload.slug} lifted the deny on a shared role or user"
            ),
        )
        changed.append(other.slug)
    return sorted(changed)


def _busy(slug: str, state: BreakerState) -> Outcome | None:
    if state.status not in IN_PROGRESS:
        return None
    verb = "trip" if state.status is Status.TRIPPING else "reset"
    return Outcome(
        Result.UNCHANGED,
        f"A {verb} of the breaker of {slug} by {_who(state.by)} began at {_when(state.since)} "
        "and has not finished. If it does not finish within minutes, `llmgov breaker "
        "reconcile` (also run by the scheduler) completes or undoes it; then try again.",
        slug,
        state,
    )


def _return_to(
    session_factory: sessionmaker[Session], slug: str, stored: dict[str, Any] | None
) -> None:
    """Put the stored state back exactly as it was (`stored`: the JSON, None for no state)
    after an intent that did not go through."""
    with transaction(session_factory) as session:
        workload = lock_workload(session, slug)
        if load_state(workload).status in IN_PROGRESS:
            restore_state(workload, stored)


def _dry_run_trip(
    session: Session,
    actor: str,
    workload: Workload,
    before: BreakerState,
    plan: list[dict],
    now: datetime,
) -> Outcome:
    """Record what Trip would do, change nothing in AWS, and keep the breaker watching: it
    is armed again (with the "would trip" noted), so the next check that still finds the
    overrun sends a new card. A dry run never silences the breaker."""
    done = "; ".join(describe(action) for action in plan)
    would = {"at": now.isoformat(), "by": actor, "plan": [describe(a) for a in plan]}
    after = BreakerState(status=Status.ARMED, since=now, by=actor, would_trip=would)
    _change(session, actor, "trip", workload, before, after, f"dry run: would {done}")
    return Outcome(
        Result.DRY_RUN,
        f"Dry run: the breaker of {workload.slug} is not enabled in the registry, so "
        f"nothing was changed in AWS. Trip would {done}. The breaker keeps watching: "
        "another card comes if the next check still finds the overrun.",
        workload.slug,
        after,
    )


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
        tripped = load_state(workload).effective(now)
        if tripped.status is Status.TRIPPED and actor not in admins:
            reason = (
                f"The breaker of {workload.slug} is tripped: while it is, only a governance "
                "admin raises the budget. Ask for a Reset with your reason on the card; an "
                "admin approves it."
            )
            return _refused(session, actor, "raise_budget", workload, reason)
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
    return _refused(session, actor, verb, workload, _refusal_text(_who_may(workload, verb)))


def _refused(session: Session, actor: str, verb: str, workload: Workload, reason: str) -> Outcome:
    """The refusal of `verb` on `workload`, audited with its reason."""
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
    "request_reset",
    "require_policy",
    "reset",
    "trip",
]

"""Changes to ownership: register, claim, assign, set backup, set budget, retire.

Each operation locks the workload's row before reading it (`lock_workload`), so concurrent
changes of one workload chain in the audit trail; it then checks
`governance.permissions.authorise`, and either applies the change and audits it with
before/after, or audits the refusal and changes nothing. Operations add to
the caller's session and never commit: the caller wraps them in one `transaction()`, so a
refusal's audit event is committed while an error (BadInput) rolls everything back.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from llmgov.governance import audit
from llmgov.governance.people import get_or_create_person
from llmgov.governance.permissions import Action, Decision, authorise
from llmgov.models.base import MAX_MONEY
from llmgov.models.errors import BadInput
from llmgov.models.locks import lock_workloads
from llmgov.models.registry import (
    SLUG_MAX,
    OrganisationProfile,
    Person,
    Platform,
    Team,
    Workload,
    WorkloadStatus,
    is_slug,
)

BUDGET_DECIMALS = 4  # more would be rounded by storage, and every re-import would "change"
TEXT_LIMITS = {"name": 200, "feature": 200, "customer": 200, "exit_strategy": 3000}

# Audit action names, one per operation.
AUDIT_ACTIONS = {
    Action.REGISTER: "workload.register",
    Action.CLAIM: "owner.claim",
    Action.ASSIGN: "owner.assign",
    Action.SET_BACKUP: "backup_owner.set",
    Action.SET_BUDGET: "budget.set",
    Action.RETIRE: "workload.retire",
}
STATUS_SET = "status.set"  # a status change other than retiring, made in the registry file
RULES_SET = "rules.set"  # attribution rules replaced, made in the registry file

# Each audited workload field: its audit action and the `snapshot` keys its events carry.
# Slack and the registry file both record changes in this one vocabulary and shape.
AUDITED_FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "owner": (AUDIT_ACTIONS[Action.ASSIGN], ("owner",)),
    "backup_owner": (AUDIT_ACTIONS[Action.SET_BACKUP], ("backup_owner",)),
    "budget": (AUDIT_ACTIONS[Action.SET_BUDGET], ("budget_monthly", "currency")),
    "status": (STATUS_SET, ("status",)),
}


def audited_status_action(new_status: str) -> str:
    """Retiring is `workload.retire` wherever it is done; any other status change is
    `status.set`."""
    if new_status == WorkloadStatus.RETIRED.value:
        return AUDIT_ACTIONS[Action.RETIRE]
    return STATUS_SET


@dataclass(frozen=True)
class Change:
    """What an operation did. `applied` False means refused; `changed` False means a no-op."""

    action: Action
    slug: str
    applied: bool
    changed: bool
    reason: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


class InvalidFields(BadInput):
    """Some fields of a registration are wrong; `errors` maps field name to message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{name}: {message}" for name, message in errors.items()))


@dataclass(frozen=True)
class WorkloadSpec:
    """A new workload, as the register form gives it (already parsed, not yet checked)."""

    slug: str
    name: str
    team: str
    platform: str
    owner: str  # Slack user id or email of the accountable owner
    feature: str | None = None
    customer: str | None = None
    budget_monthly: Decimal | None = None
    exit_strategy: str | None = None


# ---- lookups ---------------------------------------------------------------------------


def get_workload(session: Session, slug: str) -> Workload:
    """The workload `slug`, or BadInput naming the slug and how to find the right one."""
    workload = session.scalar(
        select(Workload)
        .where(Workload.slug == slug.strip().lower())
        .options(
            selectinload(Workload.owner),
            selectinload(Workload.backup_owner),
            selectinload(Workload.team),
        )
    )
    if workload is None:
        raise BadInput(
            f"There is no workload called `{slug}`. See the registered ones with `/llm-owner list`."
        )
    return workload


def lock_workload(session: Session, slug: str) -> Workload:
    """The workload `slug`, write-locked before it is read (see `models.locks`), so that two
    changes of it run one after the other and the second sees, and audits from, what the
    first left. Every change of a workload starts here; BadInput when there is no such one.
    """
    lock_workloads(session, [slug.strip().lower()])
    return get_workload(session, slug)


def _person_key(person: Person | None) -> str | None:
    if person is None:
        return None
    return person.slack_id or person.email


def snapshot(workload: Workload) -> dict[str, Any]:
    """The audited fields of a workload, JSON-ready."""
    return {
        "owner": _person_key(workload.owner),
        "backup_owner": _person_key(workload.backup_owner),
        "status": workload.status,
        "budget_monthly": _amount(workload.budget_monthly),
        "currency": workload.currency,
    }


def _amount(value: Decimal | None) -> str | None:
    """`4000`, `1250.5`: the same text on every backend, whatever the column's scale."""
    return None if value is None else format(Decimal(value).normalize(), "f")


def snapshot_of(workload: Workload, keys: tuple[str, ...]) -> dict[str, Any]:
    """The audited `keys` of a workload: the before/after of one audit event."""
    return _subset(snapshot(workload), keys)


def _subset(data: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: data[key] for key in keys}


# ---- the shared shape of every change --------------------------------------------------


def _refuse(session: Session, actor: str, action: Action, slug: str, decision: Decision) -> Change:
    audit.refusal(
        session,
        actor=actor,
        action=AUDIT_ACTIONS[action],
        entity="workload",
        entity_key=slug,
        reason=decision.reason,
    )
    return Change(action, slug, applied=False, changed=False, reason=decision.reason)


def _apply(
    session: Session,
    actor: str,
    action: Action,
    workload: Workload,
    keys: tuple[str, ...],
    mutate,
    reason: str,
) -> Change:
    before = _subset(snapshot(workload), keys)
    mutate(workload)
    session.flush()
    after = _subset(snapshot(workload), keys)
    if before == after:
        return Change(action, workload.slug, True, False, reason, before, after)
    audit.record(
        session,
        actor=actor,
        action=AUDIT_ACTIONS[action],
        entity="workload",
        entity_key=workload.slug,
        before=before,
        after=after,
        reason=reason,
    )
    return Change(action, workload.slug, True, True, reason, before, after)


def _active_person(session: Session, ref: str, name: str | None, role: str) -> Person:
    person = get_or_create_person(session, ref, name=name)
    if not person.active:
        raise BadInput(
            f"{person.label} is deactivated in Slack and cannot be the {role}; choose someone else."
        )
    return person


# ---- operations ------------------------------------------------------------------------


def claim(session: Session, actor: str, slug: str, admins: Collection[str]) -> Change:
    """`actor` becomes the owner of an unowned or discovered workload (which becomes active)."""
    workload = lock_workload(session, slug)
    decision = authorise(actor, Action.CLAIM, workload, admins)
    if not decision:
        return _refuse(session, actor, Action.CLAIM, workload.slug, decision)
    person = _active_person(session, actor, None, "owner")

    def mutate(w: Workload) -> None:
        w.owner = person
        if w.backup_owner is person:
            w.backup_owner = None  # one person cannot be both
        if w.status == WorkloadStatus.DISCOVERED:
            w.status = WorkloadStatus.ACTIVE.value

    keys = ("owner", "backup_owner", "status")
    return _apply(session, actor, Action.CLAIM, workload, keys, mutate, decision.reason)


def assign(
    session: Session,
    actor: str,
    slug: str,
    new_owner: str,
    admins: Collection[str],
    name: str | None = None,
) -> Change:
    """Make `new_owner` (Slack id or email) the owner; the owner, backup or an admin may."""
    workload = lock_workload(session, slug)
    decision = authorise(actor, Action.ASSIGN, workload, admins)
    if not decision:
        return _refuse(session, actor, Action.ASSIGN, workload.slug, decision)
    person = _active_person(session, new_owner, name, "owner")
    if workload.backup_owner is person:
        raise BadInput(
            f"{_who(person)} is the backup owner of {workload.slug}; set another backup first "
            f"(`/llm-owner backup {workload.slug} @someone`) or choose a different owner."
        )

    def mutate(w: Workload) -> None:
        w.owner = person
        if w.status == WorkloadStatus.DISCOVERED:
            w.status = WorkloadStatus.ACTIVE.value

    keys = ("owner", "status")
    return _apply(session, actor, Action.ASSIGN, workload, keys, mutate, decision.reason)


def set_backup(
    session: Session,
    actor: str,
    slug: str,
    backup: str,
    admins: Collection[str],
    name: str | None = None,
) -> Change:
    """Make `backup` the backup owner; the owner, the current backup or an admin may."""
    workload = lock_workload(session, slug)
    decision = authorise(actor, Action.SET_BACKUP, workload, admins)
    if not decision:
        return _refuse(session, actor, Action.SET_BACKUP, workload.slug, decision)
    person = _active_person(session, backup, name, "backup owner")
    if workload.owner is person:
        raise BadInput(
            f"{_who(person)} already owns {workload.slug}; the backup owner must be someone else."
        )

    def mutate(w: Workload) -> None:
        w.backup_owner = person

    keys = ("backup_owner",)
    return _apply(session, actor, Action.SET_BACKUP, workload, keys, mutate, decision.reason)


def set_budget(
    session: Session,
    actor: str,
    slug: str,
    amount: Decimal,
    admins: Collection[str],
    currency: str | None = None,
) -> Change:
    """Set the monthly budget; the owner, the backup owner or an admin may."""
    check_budget(amount)
    workload = lock_workload(session, slug)
    decision = authorise(actor, Action.SET_BUDGET, workload, admins)
    if not decision:
        return _refuse(session, actor, Action.SET_BUDGET, workload.slug, decision)

    def mutate(w: Workload) -> None:
        w.budget_monthly = amount
        if currency:
            w.currency = currency.upper()

    keys = ("budget_monthly", "currency")
    return _apply(session, actor, Action.SET_BUDGET, workload, keys, mutate, decision.reason)


def retire(session: Session, actor: str, slug: str, admins: Collection[str]) -> Change:
    """Mark the workload retired; only a governance admin may."""
    workload = lock_workload(session, slug)
    decision = authorise(actor, Action.RETIRE, workload, admins)
    if not decision:
        return _refuse(session, actor, Action.RETIRE, workload.slug, decision)

    def mutate(w: Workload) -> None:
        w.status = WorkloadStatus.RETIRED.value

    keys = ("status",)
    return _apply(session, actor, Action.RETIRE, workload, keys, mutate, decision.reason)


def budget_problem(amount: Decimal) -> str | None:
    """What is wrong with a monthly budget, or None: the one rule for Slack, the registry file
    and the breaker's "Raise budget". A budget is positive: to have none, leave it out (a
    workload that must not spend is what the circuit breaker is for)."""
    if not amount.is_finite() or amount <= 0:
        return f"must be a positive amount, not {amount}; e.g. 4000 (leave it out for no budget)"
    if amount >= MAX_MONEY:
        return f"{amount} is too large; the limit is under {MAX_MONEY:,}"
    if -int(amount.as_tuple().exponent) > BUDGET_DECIMALS:
        return f"{amount} has more than {BUDGET_DECIMALS} decimal places"
    return None


def check_budget(amount: Decimal) -> None:
    problem = budget_problem(amount)
    if problem:
        raise BadInput(f"A budget {problem}.")


def validate_spec(session: Session, spec: WorkloadSpec) -> dict[str, str]:
    """Field name → what is wrong with it; empty when the spec can be registered."""
    errors: dict[str, str] = {}
    if not is_slug(spec.slug):
        errors["slug"] = (
            f"Use lower-case letters and digits in words joined by single hyphens (up to "
            f"{SLUG_MAX} characters), e.g. search-summaries."
        )
    elif session.scalar(select(Workload.id).where(Workload.slug == spec.slug)) is not None:
        errors["slug"] = f"{spec.slug} is already registered; see `/llm-owner show {spec.slug}`."
    if not spec.name.strip():
        errors["name"] = "Give the workload a name people will recognise."
    if session.scalar(select(Team.id).where(Team.slug == spec.team)) is None:
        known = session.scalars(select(Team.slug).order_by(Team.slug)).all()
        hint = f"Known teams: {', '.join(known)}." if known else "No teams are registered yet."
        errors["team"] = f"There is no team {spec.team!r}. {hint}"
    if spec.platform not in {p.value for p in Platform}:
        errors["platform"] = "Choose one of: " + ", ".join(p.value for p in Platform) + "."
    if spec.budget_monthly is not None:
        try:
            check_budget(spec.budget_monthly)
        except BadInput as error:
            errors["budget"] = str(error)
    for name, limit in TEXT_LIMITS.items():
        value = getattr(spec, name)
        if value and len(value) > limit:
            errors[name] = f"Keep it under {limit} characters (it has {len(value)})."
    return errors


def register(session: Session, actor: str, spec: WorkloadSpec, admins: Collection[str]) -> Change:
    """Create a workload from `spec`; raises InvalidFields naming every wrong field."""
    decision = authorise(actor, Action.REGISTER, None, admins)
    errors = validate_spec(session, spec)
    if errors:
        raise InvalidFields(errors)
    owner = _active_person(session, spec.owner, None, "owner")
    team = session.scalar(select(Team).where(Team.slug == spec.team))
    organisation = session.get(OrganisationProfile, 1)
    workload = Workload(
        slug=spec.slug,
        name=spec.name.strip(),
        team=team,
        platform=spec.platform,
        owner=owner,
        feature=spec.feature or None,
        customer=spec.customer or None,
        budget_monthly=spec.budget_monthly,
        currency=organisation.currency if organisation else "USD",
        exit_strategy=spec.exit_strategy or None,
        status=WorkloadStatus.ACTIVE.value,
        constraints={},
        thresholds={},
        breaker={},
    )
    session.add(workload)
    session.flush()
    after = {
        "slug": workload.slug,
        "name": workload.name,
        "team": spec.team,
        "platform": workload.platform,
        "feature": workload.feature,
        "customer": workload.customer,
        "exit_strategy": workload.exit_strategy,
        **snapshot(workload),
    }
    audit.record(
        session,
        actor=actor,
        action=AUDIT_ACTIONS[Action.REGISTER],
        entity="workload",
        entity_key=workload.slug,
        before=None,
        after=after,
        reason=decision.reason,
    )
    return Change(Action.REGISTER, workload.slug, True, True, decision.reason, None, after)


def _who(person: Person) -> str:
    return f"<@{person.slack_id}>" if person.slack_id else person.label


__all__ = [
    "AUDIT_ACTIONS",
    "Change",
    "InvalidFields",
    "WorkloadSpec",
    "assign",
    "check_budget",
    "claim",
    "get_workload",
    "lock_workload",
    "register",
    "retire",
    "set_backup",
    "set_budget",
    "snapshot",
    "validate_spec",
]

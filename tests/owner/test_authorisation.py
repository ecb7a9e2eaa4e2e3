"""The ownership rules, one test per role and action, through the real operations and DB.

Each case checks the decision, what changed in the registry, and the audit event.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from llmgov.governance import ownership
from llmgov.models.base import transaction
from tests.owner.factories import (
    ADMIN,
    ADMINS,
    BACKUP,
    MEMBER,
    NEWBIE,
    OWNER,
    STRANGER,
    Registry,
    audit_events,
    build_registry,
    workload,
)

ROLES = {"owner": OWNER, "backup": BACKUP, "member": MEMBER, "stranger": STRANGER, "admin": ADMIN}

# action → the roles allowed to do it (to the workload the action targets)
ALLOWED = {
    "claim_unowned": {"owner", "backup", "member", "stranger", "admin"},
    "claim_owned": set(),  # the owner's own claim is a no-op, tested separately
    "assign": {"owner", "backup", "admin"},
    "backup": {"owner", "backup", "admin"},
    "budget": {"owner", "backup", "admin"},
    "retire": {"admin"},
}
AUDIT_ACTION = {
    "claim_unowned": "owner.claim",
    "claim_owned": "owner.claim",
    "assign": "owner.assign",
    "backup": "backup_owner.set",
    "budget": "budget.set",
    "retire": "workload.retire",
}


def run(action: str, session, actor: str, registry: Registry) -> ownership.Change:
    if action == "claim_unowned":
        return ownership.claim(session, actor, registry.unowned, ADMINS)
    if action == "claim_owned":
        return ownership.claim(session, actor, registry.owned, ADMINS)
    if action == "assign":
        return ownership.assign(session, actor, registry.owned, NEWBIE, ADMINS)
    if action == "backup":
        return ownership.set_backup(session, actor, registry.owned, NEWBIE, ADMINS)
    if action == "budget":
        return ownership.set_budget(session, actor, registry.owned, Decimal("5000"), ADMINS)
    if action == "retire":
        return ownership.retire(session, actor, registry.owned, ADMINS)
    raise AssertionError(action)


CASES = [
    (action, role)
    for action in ALLOWED
    for role in ROLES
    if not (action == "claim_owned" and role == "owner")
]


@pytest.mark.parametrize(("action", "role"), CASES, ids=[f"{a}-{r}" for a, r in CASES])
def test_role_and_action(session, session_factory, action, role):
    registry = build_registry(session)
    actor = ROLES[role]
    target = registry.unowned if action == "claim_unowned" else registry.owned
    with transaction(session_factory) as tx:
        change = run(action, tx, actor, registry)

    allowed = role in ALLOWED[action]
    assert change.applied is allowed, change.reason
    events = audit_events(session)
    assert len(events) == 1
    event = events[0]
    assert (event.action, event.actor, event.entity_key) == (AUDIT_ACTION[action], actor, target)
    after = workload(session, target)
    if allowed:
        assert event.outcome == "applied"
        assert event.before != event.after
        expected = {
            "claim_unowned": lambda: after.owner.slack_id == actor,
            "assign": lambda: after.owner.slack_id == NEWBIE,
            "backup": lambda: after.backup_owner.slack_id == NEWBIE,
            "budget": lambda: after.budget_monthly == Decimal("5000"),
            "retire": lambda: after.status == "retired",
        }[action]
        assert expected()
    else:
        assert event.outcome == "refused"
        assert event.reason == change.reason
        assert event.before is None and event.after is None
        # nothing changed
        assert after.owner.slack_id == OWNER
        assert after.backup_owner.slack_id == BACKUP
        assert after.budget_monthly == Decimal("4000")
        assert after.status == "active"


def test_refusal_names_who_may_act(session, session_factory):
    registry = build_registry(session)
    with transaction(session_factory) as tx:
        change = ownership.assign(tx, STRANGER, registry.owned, NEWBIE, ADMINS)
    assert change.reason == (
        f"only the owner <@{OWNER}>, the backup owner <@{BACKUP}> or a governance admin "
        f"can reassign {registry.owned}"
    )
    with transaction(session_factory) as tx:
        change = ownership.retire(tx, OWNER, registry.owned, ADMINS)
    assert change.reason == f"only a governance admin can retire {registry.owned}"
    with transaction(session_factory) as tx:
        change = ownership.claim(tx, STRANGER, registry.owned, ADMINS)
    assert change.reason.startswith(f"{registry.owned} is already owned by <@{OWNER}>")
    assert [e.outcome for e in audit_events(session)] == ["refused"] * 3


def test_owner_claiming_own_workload_changes_nothing_and_audits_nothing(session, session_factory):
    registry = build_registry(session)
    with transaction(session_factory) as tx:
        change = ownership.claim(tx, OWNER, registry.owned, ADMINS)
    assert change.applied and not change.changed
    assert audit_events(session) == []


def test_claiming_a_discovered_workload_makes_it_active(session, session_factory):
    registry = build_registry(session)
    with transaction(session_factory) as tx:
        change = ownership.claim(tx, STRANGER, registry.discovered, ADMINS)
    assert change.applied
    after = workload(session, registry.discovered)
    assert after.owner.slack_id == STRANGER and after.status == "active"
    (event,) = audit_events(session)
    assert event.before == {"owner": None, "backup_owner": None, "status": "discovered"}
    assert event.after == {"owner": STRANGER, "backup_owner": None, "status": "active"}


def test_anyone_may_claim_a_workload_whose_owner_left(session, session_factory):
    registry = build_registry(session)
    with transaction(session_factory) as tx:
        change = ownership.claim(tx, STRANGER, registry.orphaned, ADMINS)
    assert change.applied and workload(session, registry.orphaned).owner.slack_id == STRANGER


def test_unowned_workload_cannot_be_assigned_by_a_stranger(session, session_factory):
    registry = build_registry(session)
    with transaction(session_factory) as tx:
        change = ownership.assign(tx, STRANGER, registry.unowned, NEWBIE, ADMINS)
    assert not change.applied
    assert f"`/llm-owner claim {registry.unowned}`" in change.reason
    assert workload(session, registry.unowned).owner is None


def test_retired_workload_cannot_be_claimed(session, session_factory):
    registry = build_registry(session)
    with transaction(session_factory) as tx:
        ownership.retire(tx, ADMIN, registry.unowned, ADMINS)
    with transaction(session_factory) as tx:
        change = ownership.claim(tx, STRANGER, registry.unowned, ADMINS)
    assert not change.applied and "retired" in change.reason

"""Who may act on a breaker: the owner, the backup owner or a governance admin; nobody else.

One case per role and action, through the real operations, database and moto: an allowed
action changes the state (and AWS), a refused one changes nothing and is audited.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from llmgov.guardrails import actions
from llmgov.guardrails.actions import Result
from llmgov.models.registry import Workload
from tests.guardrails.conftest import (
    ADMIN,
    ADMINS,
    BACKUP,
    BEDROCK,
    MEMBER,
    NOW,
    OWNER,
    STRANGER,
    audit_events,
    breaker_of,
    inline_policies,
)

ROLES = {"owner": OWNER, "backup": BACKUP, "member": MEMBER, "stranger": STRANGER, "admin": ADMIN}
ALLOWED = {"owner", "backup", "admin"}
LATER = NOW + timedelta(minutes=5)

# action → (the audit action of a refusal, the status the breaker is in beforehand)
ACTIONS = {
    "trip": ("breaker.trip", "armed"),
    # a reset is asked for by one person and approved by an admin (test_two_person.py)
    "request_reset": ("breaker.reset_request", "tripped"),
    "ignore": ("breaker.ignore", "armed"),
    "raise_budget": ("budget.set", "armed"),
}


def act(action: str, session_factory, actor: str):
    options = {"actor": actor, "admins": ADMINS, "now": LATER}
    if action == "raise_budget":
        return actions.raise_budget(session_factory, BEDROCK, Decimal("7500"), **options)
    if action == "request_reset":
        return actions.request_reset(session_factory, BEDROCK, reason="spend explained", **options)
    return getattr(actions, action)(session_factory, BEDROCK, **options)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", ACTIONS)
def test_breaker_actions_by_role(action, role, session, session_factory, registry):
    audit_action, status_before = ACTIONS[action]
    if status_before == "tripped":
        assert (
            actions.trip(session_factory, BEDROCK, actor=ADMIN, admins=ADMINS, now=NOW).result
            is Result.APPLIED
        )
    policies_before = inline_policies()
    events_before = len(audit_events(session))

    outcome = act(action, session_factory, ROLES[role])

    state = breaker_of(session, BEDROCK).get("state", {"status": "armed"})
    budget = session.scalar(select(Workload.budget_monthly).where(Workload.slug == BEDROCK))
    if role in ALLOWED:
        assert outcome.result is Result.APPLIED, outcome.message
        expected_status = {"trip": "tripped", "ignore": "ignored"}
        if action == "request_reset":
            assert state["status"] == "tripped"
            assert state["reset_request"]["by"] == ROLES[role]
        if action in expected_status:
            assert state["status"] == expected_status[action]
            assert state["by"] == ROLES[role]
        if action == "trip":
            assert inline_policies() == [f"llmgov-breaker-{BEDROCK}"]
        if action == "raise_budget":
            assert budget == Decimal("7500")
        (event,) = audit_events(session, audit_action)[-1:]
        assert event.actor == ROLES[role] and event.outcome == "applied"
    else:
        assert outcome.result is Result.REFUSED
        assert state["status"] == status_before
        assert inline_policies() == policies_before
        assert budget == Decimal("4000")
        # the reason names who may act, so the person knows whom to ask
        assert f"<@{OWNER}>" in outcome.message and f"<@{BACKUP}>" in outcome.message
        assert "governance admin" in outcome.message
        new_events = audit_events(session)[events_before:]
        assert [(e.action, e.outcome, e.actor) for e in new_events] == [
            (audit_action, "refused", ROLES[role])
        ]
        assert new_events[0].reason  # the refusal says why


@pytest.mark.parametrize("role", ROLES)
def test_asking_before_the_raise_budget_modal(role, session, session_factory, registry):
    refused = actions.may_act(
        session_factory, BEDROCK, "raise_budget", actor=ROLES[role], admins=ADMINS
    )
    if role in ALLOWED:
        assert refused is None
        assert audit_events(session) == []
    else:
        assert refused is not None and refused.result is Result.REFUSED
        assert "raise the budget of search-summaries" in refused.message
        (event,) = audit_events(session)
        assert (event.action, event.outcome) == ("budget.set", "refused")


def test_raise_budget_must_raise_it(session, session_factory, registry):
    from llmgov.models.errors import BadInput

    with pytest.raises(BadInput, match="not higher than the current budget"):
        actions.raise_budget(
            session_factory, BEDROCK, Decimal("3000"), actor=OWNER, admins=ADMINS, now=NOW
        )
    assert audit_events(session) == []


def test_a_stranger_gets_the_refusal_not_the_budget_advice(session, session_factory, registry):
    outcome = actions.raise_budget(
        session_factory, BEDROCK, Decimal("3000"), actor=STRANGER, admins=ADMINS, now=NOW
    )
    assert outcome.result is Result.REFUSED

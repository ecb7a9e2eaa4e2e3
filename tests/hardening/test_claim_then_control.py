"""A claim gives the workload, not its money at once (docs/reliability.md, finding 3).

Red-teamed: a stranger was refused `breaker_trip`; then `/llm-owner claim` of an unowned
workload, and the same stranger could trip and reset its breaker and raise its budget to
$999,999. Now, through the real listeners: the claim works, every admin gets a direct
message about it (through the outbox) with a Confirm button, and until an admin confirms
or `CLAIM_WAITING_PERIOD` passes, the claimer's budget change and breaker Trip are refused
(and audited). After the confirmation, or the waiting period, they are allowed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from logging import getLogger

import pytest
from sqlalchemy import select

from llmgov.bot.listeners.actions.owner_claim import (
    CONFIRM_CLAIM_ACTION_ID,
    owner_confirm_claim_action,
)
from llmgov.bot.listeners.commands.llm_owner import reply_llm_owner
from llmgov.bot.slack_client import make_client
from llmgov.governance.permissions import CLAIM_WAITING_PERIOD
from llmgov.guardrails import actions as breaker
from llmgov.models.base import transaction
from llmgov.models.governance import OutboxMessage
from llmgov.models.registry import AuditEvent, Workload
from tests.hardening.conftest import ADMIN, STRANGER
from tests.hardening.support import button_payload

log = getLogger("tests.hardening.claim")
RESPONSE_URL = "https://hooks.slack.com/actions/T0HARDEN1/1/claim"
ROLE_ARN = "arn:aws:iam::111122223333:role/query-rewriter"


def owner_says(deps, client, actor: str, text: str) -> str:
    reply = reply_llm_owner(deps, {"command": "/llm-owner", "text": text, "user_id": actor}, client)
    return reply.message.text


def _budget(session, slug: str) -> Decimal | None:
    session.rollback()
    return session.scalar(select(Workload.budget_monthly).where(Workload.slug == slug))


@pytest.fixture
def claimed(deps, settings, session_factory, world):
    """The stranger claims the unowned workload (which has a dry-run breaker)."""
    with transaction(session_factory) as session:
        workload = session.scalar(select(Workload).where(Workload.slug == world.unowned))
        workload.breaker = {"enabled": False, "principal": ROLE_ARN}
    client = make_client(settings)
    told = owner_says(deps, client, STRANGER, f"claim {world.unowned}")
    assert "You now own" in told, told
    return client


def test_a_fresh_claimer_cannot_raise_the_budget_or_trip_the_breaker(
    claimed, deps, session, session_factory, world
):
    told = owner_says(deps, claimed, STRANGER, f"budget {world.unowned} 999999")
    assert "governance admin confirms the claim" in told, told
    assert _budget(session, world.unowned) is None

    tripped = breaker.trip(
        session_factory, world.unowned, actor=STRANGER, admins={ADMIN}, now=datetime.now(UTC)
    )
    assert tripped.result is breaker.Result.REFUSED
    refusals = session.scalars(
        select(AuditEvent.action).where(
            AuditEvent.actor == STRANGER, AuditEvent.outcome == "refused"
        )
    ).all()
    assert "budget.set" in refusals and "breaker.trip" in refusals


def test_every_admin_is_told_of_the_claim_and_can_confirm_it(
    claimed, deps, session, session_factory, world, context
):
    (notice,) = session.scalars(select(OutboxMessage).where(OutboxMessage.channel == ADMIN))
    assert notice.method == "chat.postMessage"
    assert f"<@{STRANGER}> claimed `{world.unowned}`" in notice.payload["text"]
    (button,) = notice.payload["blocks"][1]["elements"]
    assert button["action_id"] == CONFIRM_CLAIM_ACTION_ID

    answers = []

    def click(actor: str) -> None:
        owner_confirm_claim_action(
            ack=lambda **_: None,
            body=button_payload(CONFIRM_CLAIM_ACTION_ID, button["value"], actor, RESPONSE_URL),
            respond=lambda **kwargs: answers.append(kwargs["text"]),
            client=claimed,
            context=context,
            logger=log,
        )

    click(STRANGER)  # the claimer cannot confirm their own claim
    assert "only a governance admin" in answers[-1]
    assert "budget and circuit breaker" in owner_says(
        deps, claimed, STRANGER, f"budget {world.unowned} 5000"
    )

    click(ADMIN)
    assert answers[-1].startswith("✅ Confirmed")
    assert "budget" in owner_says(deps, claimed, STRANGER, f"budget {world.unowned} 5000")
    assert _budget(session, world.unowned) == Decimal("5000")
    tripped = breaker.trip(
        session_factory, world.unowned, actor=STRANGER, admins={ADMIN}, now=datetime.now(UTC)
    )
    assert tripped.result is breaker.Result.DRY_RUN


def test_after_the_waiting_period_the_claimer_has_the_budget(
    claimed, deps, session, session_factory, world
):
    with transaction(session_factory) as moved:
        event = moved.scalars(select(AuditEvent).where(AuditEvent.action == "owner.claim")).one()
        event.at = datetime.now(UTC) - CLAIM_WAITING_PERIOD - timedelta(minutes=1)
    owner_says(deps, claimed, STRANGER, f"budget {world.unowned} 7000")
    assert _budget(session, world.unowned) == Decimal("7000")


def test_a_refused_claim_tells_no_admin(deps, settings, session, world):
    client = make_client(settings)
    told = owner_says(deps, client, STRANGER, f"claim {world.owned}")
    assert "already owned" in told
    assert session.scalars(select(OutboxMessage)).all() == []

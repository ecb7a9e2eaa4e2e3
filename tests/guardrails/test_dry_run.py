"""Finding 9: a dry-run trip records "would trip" and the cards keep coming.

Before, a dry-run Trip moved the breaker to TRIPPED, and a later 400% overrun sent nothing."""

from __future__ import annotations

from datetime import timedelta

from llmgov.bot.blocks.breaker import breaker_message
from llmgov.bot.breaker_notify import notify_breakers
from llmgov.bot.settings import Settings
from llmgov.guardrails import actions
from llmgov.guardrails.actions import Result
from llmgov.guardrails.card import load_card
from tests.guardrails.conftest import (
    ADMINS,
    BEDROCK,
    NOW,
    OWNER,
    ROLE_ARN,
    audit_events,
    breaker_of,
    build_registry,
    inline_policies,
    overrun,
)

SETTINGS = Settings(admins=ADMINS)


def test_a_dry_run_trip_does_not_silence_the_breaker(session, session_factory, aws):
    build_registry(session, bedrock_breaker={"enabled": False, "principal": ROLE_ARN})
    (first,) = notify_breakers(session_factory, SETTINGS, NOW, [overrun(pct=180)])

    outcome = actions.trip(session_factory, BEDROCK, actor=OWNER, admins=ADMINS, now=NOW)
    assert outcome.result is Result.DRY_RUN
    assert inline_policies() == []
    state = breaker_of(session, BEDROCK)["state"]
    assert state["status"] != "tripped"
    assert state["would_trip"]["by"] == OWNER
    (event,) = audit_events(session, "breaker.trip")
    assert "would" in event.reason

    card = breaker_message(load_card(session_factory, BEDROCK, NOW)).to_dict()
    assert "pressed Trip" in str(card) and "dry run" in str(card)
    assert any(
        element["action_id"] == "breaker_trip"
        for block in card["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    )

    later = NOW + timedelta(hours=1)
    (second,) = notify_breakers(session_factory, SETTINGS, later, [overrun(pct=400)])
    assert second.firing_id != first.firing_id
    assert "400%" in second.triggers[0]

"""Finding 10: two people for reset and override, the Slack user in CloudTrail, and the
audit trail as JSON lines."""

from __future__ import annotations

import json
from decimal import Decimal

import boto3
import pytest

from llmgov.bot.cli import main
from llmgov.guardrails import actions
from llmgov.guardrails.actions import Result
from llmgov.guardrails.aws import registry_clients
from llmgov.models.errors import BadInput
from llmgov.models.registry import SourceSetting
from tests.guardrails.conftest import (
    ACCOUNT,
    ADMIN,
    BEDROCK,
    NOW,
    OWNER,
    audit_events,
    breaker_of,
    inline_policies,
)

OTHER_ADMIN = "U0ADMIN02"
ADMINS = frozenset({ADMIN, OTHER_ADMIN})
POLICY = f"llmgov-breaker-{BEDROCK}"


def trip(session_factory, actor=OWNER):
    return actions.trip(session_factory, BEDROCK, actor=actor, admins=ADMINS, now=NOW)


def ask(session_factory, actor=OWNER, reason="the launch traffic is expected"):
    return actions.request_reset(
        session_factory, BEDROCK, actor=actor, admins=ADMINS, now=NOW, reason=reason
    )


def approve(session_factory, actor):
    return actions.reset(session_factory, BEDROCK, actor=actor, admins=ADMINS, now=NOW)


def test_the_owner_cannot_reset_alone(session, session_factory, registry):
    assert trip(session_factory).ok
    outcome = approve(session_factory, OWNER)
    assert outcome.result is Result.REFUSED and "needs a reason" in outcome.message
    with pytest.raises(BadInput, match="Say why"):
        ask(session_factory, reason="ok")
    assert ask(session_factory).ok
    outcome = approve(session_factory, OWNER)
    assert outcome.result is Result.REFUSED
    assert "Only a governance admin can approve" in outcome.message
    assert inline_policies() == [POLICY]
    assert breaker_of(session, BEDROCK)["state"]["status"] == "tripped"


def test_an_admin_approves_and_the_audit_names_both_and_the_reason(
    session, session_factory, registry
):
    assert trip(session_factory).ok
    assert ask(session_factory).ok
    outcome = approve(session_factory, ADMIN)
    assert outcome.result is Result.APPLIED, outcome.message
    assert inline_policies() == []
    (event,) = audit_events(session, "breaker.reset")
    assert event.actor == ADMIN
    assert f"<@{OWNER}>" in event.reason and "the launch traffic is expected" in event.reason
    (asked,) = audit_events(session, "breaker.reset_request")
    assert asked.actor == OWNER and asked.reason == "the launch traffic is expected"


def test_an_admins_own_trip_or_request_needs_another_admin(session, session_factory, registry):
    assert trip(session_factory, actor=ADMIN).ok
    assert ask(session_factory, actor=ADMIN).ok
    assert approve(session_factory, ADMIN).result is Result.REFUSED  # asked it themselves
    assert approve(session_factory, OTHER_ADMIN).result is Result.APPLIED

    assert trip(session_factory, actor=ADMIN).ok
    assert ask(session_factory, actor=OWNER).ok
    refused = approve(session_factory, ADMIN)  # the admin who tripped it
    assert refused.result is Result.REFUSED and "You tripped" in refused.message
    assert approve(session_factory, OTHER_ADMIN).ok


def test_a_budget_raise_while_tripped_needs_an_admin(session, session_factory, registry):
    assert trip(session_factory).ok
    outcome = actions.raise_budget(
        session_factory, BEDROCK, Decimal("9000"), actor=OWNER, admins=ADMINS, now=NOW
    )
    assert outcome.result is Result.REFUSED and "only a governance admin" in outcome.message
    (event,) = [e for e in audit_events(session, "budget.set") if e.outcome == "refused"]
    assert event.actor == OWNER


def test_the_assumed_role_session_is_named_after_the_slack_user(session, aws):
    iam = boto3.client("iam")
    iam.create_role(RoleName="llmgov-breaker-bot", AssumeRolePolicyDocument="{}")
    session.add(
        SourceSetting(
            name="aws",
            config={
                "accounts": [
                    {"id": ACCOUNT, "role_arn": f"arn:aws:iam::{ACCOUNT}:role/llmgov-breaker-bot"}
                ]
            },
        )
    )
    session.commit()
    clients = registry_clients(session, OWNER)
    arn = clients("sts", account=ACCOUNT, region=None).get_caller_identity()["Arn"]
    assert arn.endswith(f"assumed-role/llmgov-breaker-bot/llmgov-breaker-{OWNER}")


def test_llmgov_audit_export_writes_json_lines(
    session, session_factory, registry, tmp_path, capsys
):
    assert trip(session_factory).ok
    assert ask(session_factory).ok
    assert main(["audit", "export"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["action"] for row in lines] == ["breaker.trip", "breaker.reset_request"]
    assert lines[1]["actor"] == OWNER and lines[1]["reason"] == "the launch traffic is expected"

    target = tmp_path / "audit.jsonl"
    assert main(["audit", "export", "--since", "2999-01-01", "--output", str(target)]) == 0
    assert (
        target.read_text() == ""
    )  # nothing from that day on (events are stamped with the real clock)
    assert main(["audit", "export", "--output", str(tmp_path / "no" / "such" / "dir")]) == 2


def test_reset_in_slack_asks_for_a_reason_then_offers_approve_reset(
    session, session_factory, registry
):
    from unittest.mock import MagicMock

    from llmgov.bot.blocks.breaker import breaker_message
    from llmgov.bot.listeners.actions.breaker_actions import (
        handle_reset_request_submission,
        open_reset_request,
    )
    from llmgov.bot.listeners.deps import AppDeps
    from llmgov.bot.settings import Settings
    from llmgov.guardrails.card import load_card
    from tests.guardrails.test_listeners import click

    deps = AppDeps.build(Settings(admins=ADMINS), session_factory)
    assert trip(session_factory).ok
    client = MagicMock()
    assert open_reset_request(click("breaker_reset", OWNER), MagicMock(), deps, client, now=NOW)
    view = client.views_open.call_args.kwargs["view"].to_dict()
    view["state"] = {"values": {"reason": {"reason": {"value": "a planned backfill"}}}}
    ack = MagicMock()
    outcome = handle_reset_request_submission(
        ack, {"user": {"id": OWNER}}, view, deps, None, MagicMock(), now=NOW
    )
    assert outcome.ok and ack.call_args.kwargs == {}
    card = breaker_message(load_card(session_factory, BEDROCK, NOW)).to_dict()
    buttons = [
        element["action_id"]
        for block in card["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]
    assert buttons == ["breaker_approve_reset"]
    assert "a planned backfill" in str(card)

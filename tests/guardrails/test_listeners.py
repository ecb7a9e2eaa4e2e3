"""The breaker's listeners as plain functions (mock ack/respond/client), and once through a
real Bolt app over signed HTTP with the mock Slack Web API and moto."""

from __future__ import annotations

import json
from decimal import Decimal
from unittest.mock import MagicMock

import pytest
from slack_sdk import WebClient
from sqlalchemy import select

from llmgov.bot.app import build_app
from llmgov.bot.blocks.breaker import BUDGET_ACTION_ID, BUDGET_BLOCK_ID, RAISE_BUDGET_CALLBACK_ID
from llmgov.bot.breaker_notify import notify_breakers
from llmgov.bot.listeners.actions import breaker_actions
from llmgov.bot.listeners.actions.breaker_actions import (
    handle_decision,
    handle_raise_budget_submission,
    open_raise_budget,
    parse_amount,
)
from llmgov.bot.listeners.deps import AppDeps
from llmgov.bot.settings import Settings
from llmgov.guardrails import actions
from llmgov.guardrails.actions import Result
from llmgov.models.errors import BadInput
from llmgov.models.governance import OutboxMessage
from llmgov.models.registry import Workload
from tests.guardrails.conftest import (
    ADMIN,
    ADMINS,
    BEDROCK,
    NOW,
    OWNER,
    STRANGER,
    audit_events,
    breaker_of,
    inline_policies,
    overrun,
)
from tests.slack.conftest import settings, slack_server  # noqa: F401 - fixtures used below

DM = "D0OWNER01"
TS = "1773741600.000100"


@pytest.fixture
def deps(session_factory) -> AppDeps:
    return AppDeps.build(Settings(admins=ADMINS), session_factory)


def click(action_id: str, user: str, slug: str = BEDROCK) -> dict:
    """A block_actions payload as Slack sends it for a button on a bot DM."""
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": "T0TEST"},
        "api_app_id": "A0LLMGOV",
        "team": {"id": "T0TEST", "domain": "acme"},
        "container": {"type": "message", "message_ts": TS, "channel_id": DM, "is_ephemeral": False},
        "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        "channel": {"id": DM, "name": "directmessage"},
        "message": {"type": "message", "ts": TS, "text": "breaker"},
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "breaker_actions",
                "value": slug,
                "action_ts": "1773741700.000200",
                "text": {"type": "plain_text", "text": "x"},
            }
        ],
    }


def calls(respond: MagicMock) -> list[dict]:
    return [call.kwargs for call in respond.call_args_list]


# ---- buttons -------------------------------------------------------------------------------


def test_trip_replaces_the_card_then_tells_the_user(session, deps, registry):
    notify_breakers(deps.session_factory, deps.settings, NOW, [overrun()])
    respond = MagicMock()

    outcome = handle_decision("trip", click("breaker_trip", OWNER), respond, deps, None, now=NOW)

    assert outcome.result is Result.APPLIED
    assert inline_policies() == [f"llmgov-breaker-{BEDROCK}"]
    replaced, told = calls(respond)
    assert replaced["replace_original"] is True
    assert [e["action_id"] for e in replaced["blocks"][-1]["elements"]] == ["breaker_reset"]
    assert told == {
        "text": outcome.message,
        "response_type": "ephemeral",
        "replace_original": False,
    }
    assert told["text"].startswith("Tripped the breaker of search-summaries. Applied: deny")
    # the other copies (the owner's and the admin's DMs) are queued for an update
    session.expire_all()
    updates = session.scalars(
        select(OutboxMessage).where(OutboxMessage.method == "chat.update")
    ).all()
    assert len(updates) == 2


def test_a_refusal_is_ephemeral_names_who_may_and_changes_nothing(session, deps, registry):
    respond = MagicMock()
    outcome = handle_decision("trip", click("breaker_trip", STRANGER), respond, deps, None, now=NOW)
    assert outcome.result is Result.REFUSED
    (told,) = calls(respond)
    assert told["response_type"] == "ephemeral" and told["replace_original"] is False
    assert f"<@{OWNER}>" in told["text"]  # mentions survive escaping, so they render
    assert inline_policies() == []
    (event,) = audit_events(session)
    assert (event.action, event.outcome, event.actor) == ("breaker.trip", "refused", STRANGER)


def test_an_unknown_workload_is_a_clear_ephemeral_answer(deps, registry):
    respond = MagicMock()
    assert (
        handle_decision("ignore", click("breaker_ignore", ADMIN, "nope"), respond, deps, None)
        is None
    )
    (told,) = calls(respond)
    assert "There is no workload called `nope`" in told["text"]


def test_reset_by_an_admin_after_an_owner_tripped(session, session_factory, deps, registry):
    handle_decision("trip", click("breaker_trip", OWNER), MagicMock(), deps, None, now=NOW)
    actions.request_reset(
        session_factory, BEDROCK, actor=OWNER, admins=ADMINS, now=NOW, reason="spend explained"
    )
    respond = MagicMock()
    outcome = handle_decision("reset", click("breaker_reset", ADMIN), respond, deps, None, now=NOW)
    assert outcome.result is Result.APPLIED
    assert inline_policies() == []
    replaced, _ = calls(respond)
    assert [e["action_id"] for e in replaced["blocks"][-1]["elements"]] == [
        "breaker_trip",
        "breaker_raise_budget",
    ]


# ---- raise budget --------------------------------------------------------------------------


def test_raise_budget_opens_the_modal_for_the_owner_only(session, deps, registry):
    client, respond = MagicMock(), MagicMock()
    assert (
        open_raise_budget(click("breaker_raise_budget", STRANGER), respond, deps, client) is False
    )
    client.views_open.assert_not_called()
    assert "only the owner" in calls(respond)[0]["text"].lower()

    assert open_raise_budget(
        click("breaker_raise_budget", OWNER), MagicMock(), deps, client, now=NOW
    )
    view = client.views_open.call_args.kwargs["view"].to_dict()
    assert view["callback_id"] == RAISE_BUDGET_CALLBACK_ID
    assert json.loads(view["private_metadata"]) == {"slug": BEDROCK, "channel": DM, "ts": TS}


def submission(amount: str, user: str = OWNER, metadata: str | None = None) -> tuple[dict, dict]:
    view = {
        "id": "V0RAISE01",
        "type": "modal",
        "callback_id": RAISE_BUDGET_CALLBACK_ID,
        "private_metadata": metadata
        if metadata is not None
        else json.dumps({"slug": BEDROCK, "channel": DM, "ts": TS}),
        "state": {
            "values": {
                BUDGET_BLOCK_ID: {BUDGET_ACTION_ID: {"type": "number_input", "value": amount}}
            }
        },
    }
    return {"type": "view_submission", "user": {"id": user}, "view": view}, view


def test_raise_budget_submission_raises_rearms_and_updates_the_card(session, deps, registry):
    notify_breakers(deps.session_factory, deps.settings, NOW, [overrun()])
    ack, client = MagicMock(), MagicMock()
    body, view = submission("7200")

    outcome = handle_raise_budget_submission(ack, body, view, deps, client, MagicMock(), now=NOW)

    ack.assert_called_once_with()
    assert outcome.result is Result.APPLIED
    session.expire_all()
    assert session.scalar(
        select(Workload.budget_monthly).where(Workload.slug == BEDROCK)
    ) == Decimal("7200")
    assert breaker_of(session, BEDROCK)["state"]["status"] == "armed"
    update = client.chat_update.call_args.kwargs
    assert (update["channel"], update["ts"]) == (DM, TS)
    assert "$7,200" in json.dumps(update["blocks"])
    assert [e.action for e in audit_events(session)][-2:] == ["budget.set", "breaker.rearm"]


@pytest.mark.parametrize(
    ("amount", "user", "says"),
    [
        ("abc", OWNER, "is not an amount"),
        ("-5", OWNER, "must be a positive amount"),
        ("NaN", OWNER, "must be a positive amount"),
        ("3000", OWNER, "not higher than the current budget"),
        ("1e40", OWNER, "too large"),
        ("9000", STRANGER, "Only the owner"),
    ],
)
def test_raise_budget_submission_errors_show_in_the_modal(
    amount, user, says, session, deps, registry
):
    ack, client = MagicMock(), MagicMock()
    body, view = submission(amount, user)
    handle_raise_budget_submission(ack, body, view, deps, client, MagicMock(), now=NOW)
    (call,) = ack.call_args_list
    assert call.kwargs["response_action"] == "errors"
    assert says in call.kwargs["errors"][BUDGET_BLOCK_ID]
    client.chat_update.assert_not_called()
    session.expire_all()
    assert session.scalar(
        select(Workload.budget_monthly).where(Workload.slug == BEDROCK)
    ) == Decimal("4000")


def test_garbled_private_metadata_is_an_error_not_a_crash(deps, registry):
    ack = MagicMock()
    body, view = submission("5000", metadata="{not json")
    handle_raise_budget_submission(ack, body, view, deps, MagicMock(), MagicMock(), now=NOW)
    assert ack.call_args.kwargs["response_action"] == "errors"


def test_parse_amount():
    assert parse_amount("6,500.505") == Decimal("6500.51")
    assert parse_amount(7200) == Decimal("7200.00")
    with pytest.raises(BadInput):
        parse_amount(None)
    with pytest.raises(BadInput):
        parse_amount("0.001")


# ---- through Bolt, over signed HTTP --------------------------------------------------------


@pytest.fixture
def bolt_app(settings, session_factory, answers):  # noqa: F811 - overrides tests/slack's app
    app = build_app(settings, session_factory, token_verification_enabled=False, answers=answers)
    breaker_actions.register(app)  # harmless if bot/listeners already registers it
    return app


def test_trip_over_signed_http_with_moto(slack_server, slack_mock, session, registry):  # noqa: F811
    payload = click("breaker_trip", OWNER)
    payload["response_url"] = slack_server.response_url
    reply = slack_server.interaction(payload)
    assert reply.status == 200 and reply.body == ""

    replaced, told = (call.args for call in slack_mock.wait_for("response_url", 2))
    assert replaced["replace_original"] in (True, "true")
    assert "tripped" in replaced["text"]
    assert told["response_type"] == "ephemeral"
    assert inline_policies() == [f"llmgov-breaker-{BEDROCK}"]
    assert breaker_of(session, BEDROCK)["state"]["status"] == "tripped"


def test_a_forged_click_is_rejected_and_changes_nothing(slack_server, session, registry):  # noqa: F811
    payload = click("breaker_trip", ADMIN)
    payload["response_url"] = slack_server.response_url
    reply = slack_server.interaction(payload, secret="not-the-signing-secret")
    assert reply.status == 401
    assert inline_policies() == []
    assert audit_events(session) == []


def test_raise_budget_over_signed_http(
    slack_server,  # noqa: F811
    slack_mock,
    settings,  # noqa: F811
    session,
    session_factory,
    registry,
):
    """Click → views.open (checked against the Web API catalogue) → submit → card updated."""
    notify_breakers(session_factory, settings, NOW, [overrun()])
    posted = WebClient(token="xoxb-test", base_url=slack_mock.url).chat_postMessage(
        channel=DM, text="breaker card", blocks=[]
    )
    payload = click("breaker_raise_budget", OWNER)
    payload["container"].update(channel_id=posted["channel"], message_ts=posted["ts"])
    payload["response_url"] = slack_server.response_url
    assert slack_server.interaction(payload).status == 200
    (opened,) = slack_mock.wait_for("views.open")
    view = (
        json.loads(opened.args["view"])
        if isinstance(opened.args["view"], str)
        else opened.args["view"]
    )
    assert view["callback_id"] == RAISE_BUDGET_CALLBACK_ID

    body, submitted = submission("7200")
    submitted["private_metadata"] = view["private_metadata"]
    body.update(team={"id": "T0TEST"}, api_app_id="A0LLMGOV", view=submitted)
    reply = slack_server.interaction(body)
    assert reply.status == 200 and reply.body == ""  # a plain ack closes the modal
    (updated,) = slack_mock.wait_for("chat.update")
    assert (updated.args["channel"], updated.args["ts"]) == (posted["channel"], posted["ts"])
    session.expire_all()
    assert session.scalar(
        select(Workload.budget_monthly).where(Workload.slug == BEDROCK)
    ) == Decimal("7200")

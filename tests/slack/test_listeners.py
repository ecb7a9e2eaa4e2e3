"""Listener functions called directly, as the starter template tests them: Mock(Ack),
Mock(Respond), a WebClient pointed at the mock Web API, and the deps in the context."""

from __future__ import annotations

import json
from logging import Logger
from unittest.mock import MagicMock, Mock

import pytest
from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from llmgov.bot.app import handle_error
from llmgov.bot.listeners.actions.owner_claim import owner_claim_action
from llmgov.bot.listeners.commands import SLASH_COMMANDS
from llmgov.bot.listeners.commands.llm_owner import llm_owner_command, reply_llm_owner
from llmgov.bot.listeners.deps import CONTEXT_KEY, AdminDirectory, AppDeps, deps_from
from llmgov.bot.listeners.events.app_home import app_home_opened
from llmgov.bot.listeners.views.register_workload import register_workload_submission
from tests.owner.factories import ADMIN, NEWBIE, OWNER, STRANGER, build_registry, workload
from tests.slack.conftest import TRIGGER_ID


def context_for(deps: AppDeps) -> BoltContext:
    return BoltContext({CONTEXT_KEY: deps})


def command(text: str, user: str = STRANGER, **extra) -> dict:
    return {
        "command": "/llm-owner",
        "text": text,
        "user_id": user,
        "trigger_id": TRIGGER_ID,
        "response_url": "https://hooks.example/r",
        **extra,
    }


@pytest.fixture
def client(slack_mock) -> WebClient:
    return WebClient(token="xoxb-test", base_url=slack_mock.url)


def test_ack_comes_first_then_respond(deps, client, session):
    build_registry(session)
    calls = MagicMock()
    ack, respond = Mock(Ack), Mock(Respond)
    calls.attach_mock(ack, "ack")
    calls.attach_mock(respond, "respond")
    llm_owner_command(ack, command("list"), respond, client, context_for(deps), Mock(Logger))
    assert [c[0] for c in calls.mock_calls] == ["ack", "respond"]
    ack.assert_called_once_with()
    kwargs = respond.call_args.kwargs
    assert kwargs["response_type"] == "ephemeral"
    assert kwargs["text"].startswith("Workloads: 5 workloads")
    assert len(kwargs["blocks"]) == 6


def test_register_opens_the_modal_before_touching_the_database(settings, client, slack_mock):
    def no_database():
        raise AssertionError("the register path must not touch the database before views.open")

    deps = AppDeps(settings, no_database, AdminDirectory(frozenset()))  # type: ignore[arg-type]
    respond = Mock(Respond)
    llm_owner_command(Mock(Ack), command("register"), respond, client, context_for(deps), Mock())
    (opened,) = slack_mock.calls_to("views.open")
    assert opened.args["trigger_id"] == TRIGGER_ID
    assert json.loads(opened.args["view"]["private_metadata"]) == {
        "response_url": "https://hooks.example/r"
    }
    assert opened.args["view"]["blocks"][4]["element"]["initial_user"] == STRANGER
    respond.assert_not_called()


def test_register_when_the_trigger_expired(deps, client, slack_mock):
    from tests.support.slack_mock import Fault

    slack_mock.fail_next("views.open", Fault(400, error="expired_trigger_id"))
    reply = reply_llm_owner(deps, command("register"), client)
    assert reply is not None and reply.outcome == "error"
    assert "could not open (Slack said expired_trigger_id)" in reply.message.text


def test_reply_without_slack_explains_register(deps):
    reply = reply_llm_owner(deps, command("register", trigger_id=None), None)
    assert reply is not None and reply.outcome == "error"
    assert "llmgov registry import" in reply.message.text


def test_every_slash_command_has_a_listener_and_a_reply():
    for name, spec in SLASH_COMMANDS.items():
        assert spec.name == name and callable(spec.listener) and callable(spec.reply)


def test_claim_button_in_a_message(deps, client, session):
    registry = build_registry(session)
    respond = Mock(Respond)
    body = {"user": {"id": STRANGER}, "actions": [{"value": registry.unowned}]}
    owner_claim_action(Mock(Ack), body, respond, client, context_for(deps), Mock())
    assert respond.call_args.kwargs["replace_original"] is False
    assert respond.call_args.kwargs["text"] == f"✅ You now own *{registry.unowned}*."
    assert workload(session, registry.unowned).owner.slack_id == STRANGER


def test_claim_button_on_the_home_tab_redraws_it(deps, client, session, slack_mock):
    registry = build_registry(session)
    respond = Mock(Respond)
    body = {
        "user": {"id": STRANGER},
        "actions": [{"value": registry.unowned}],
        "view": {"type": "home"},
    }
    owner_claim_action(Mock(Ack), body, respond, client, context_for(deps), Mock())
    respond.assert_not_called()
    (published,) = slack_mock.calls_to("views.publish")
    assert published.args["user_id"] == STRANGER
    assert published.args["view"]["type"] == "home"
    assert registry.unowned in json.dumps(published.args["view"])  # now among their workloads


def test_home_ignores_the_messages_tab(deps):
    client = Mock(WebClient)
    app_home_opened({"user": OWNER, "tab": "messages"}, client, context_for(deps), Mock())
    client.views_publish.assert_not_called()


def submission(values: dict, metadata: dict | None = None) -> tuple[dict, dict]:
    state = {k: {"value": {"type": "plain_text_input", "value": v}} for k, v in values.items()}
    view = {"state": {"values": state}, "private_metadata": json.dumps(metadata or {})}
    return {"user": {"id": NEWBIE}}, view


def test_register_submission_with_errors_acks_them_next_to_the_fields(deps, session):
    build_registry(session)
    body, view = submission({"slug": "Bad Slug", "team": "nope"})
    ack = Mock(Ack)
    register_workload_submission(ack, body, view, context_for(deps), Mock(Logger))
    kwargs = ack.call_args.kwargs
    assert kwargs["response_action"] == "errors"
    assert set(kwargs["errors"]) == {"slug", "name", "team", "platform", "owner"}
    assert all(len(message) <= 300 for message in kwargs["errors"].values())


def test_register_submission_confirms_at_the_commands_response_url(deps, session, slack_mock):
    build_registry(session)
    values = {"slug": "new-one", "name": "New", "team": "search", "platform": "other"}
    values["owner"] = NEWBIE
    body, view = submission(values, {"response_url": slack_mock.response_url + "x"})
    ack = Mock(Ack)
    register_workload_submission(ack, body, view, context_for(deps), Mock(Logger))
    ack.assert_called_once_with()
    (answer,) = slack_mock.wait_for("response_url")
    assert answer.args["text"] == f"✅ Registered *new-one*, owned by <@{NEWBIE}>."
    assert workload(session, "new-one").platform == "other"


def test_error_handler_logs_and_tells_the_user(slack_mock):
    logger = Mock(Logger)
    error = RuntimeError("boom")
    verified = BoltContext({"authorize_result": object()})
    handle_error(error, {"response_url": slack_mock.response_url + "e"}, logger, verified)
    logger.exception.assert_called_once()
    (answer,) = slack_mock.wait_for("response_url")
    assert answer.args["response_type"] == "ephemeral"
    assert "Something went wrong" in answer.args["text"]


def test_error_handler_never_answers_an_unverified_request(slack_mock):
    logger = Mock(Logger)
    handle_error(
        RuntimeError("bad headers"),
        {"response_url": slack_mock.response_url + "e"},
        logger,
        BoltContext({}),
    )
    logger.exception.assert_called_once()
    assert slack_mock.state.calls == []


def test_deps_from_requires_register_listeners():
    with pytest.raises(RuntimeError, match="register_listeners"):
        deps_from(BoltContext({}))


# ---- governance admins, including a user group ---------------------------------------------


def group_client(members: list[str] | None = None, error: str | None = None) -> Mock:
    client = Mock(WebClient)
    if error:
        response = SlackResponse(
            client=None,
            http_verb="GET",
            api_url="",
            req_args={},
            data={"ok": False, "error": error},
            headers={},
            status_code=200,
        )
        client.usergroups_users_list.side_effect = SlackApiError(error, response)
    else:
        client.usergroups_users_list.return_value = {"ok": True, "users": members or []}
    return client


def test_admins_expand_a_user_group_and_cache_it():
    now = [0.0]
    directory = AdminDirectory(
        frozenset({ADMIN, "S0GOVERN1"}), ttl_seconds=300, clock=lambda: now[0]
    )
    client = group_client(["U0LEAD001", "U0LEAD002"])
    assert directory.resolve(client) == {ADMIN, "U0LEAD001", "U0LEAD002"}
    directory.resolve(client)
    assert client.usergroups_users_list.call_count == 1  # cached
    now[0] = 301
    directory.resolve(client)
    assert client.usergroups_users_list.call_count == 2  # expired
    client.usergroups_users_list.assert_called_with(usergroup="S0GOVERN1")


def test_an_unreadable_admin_group_adds_nobody():
    directory = AdminDirectory(frozenset({ADMIN, "S0GOVERN1"}))
    assert directory.resolve(group_client(error="missing_scope")) == {ADMIN}
    assert directory.resolve(None) == {ADMIN}

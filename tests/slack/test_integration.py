"""A real Bolt app behind the real WSGI app (bot/server.py), on an ephemeral loopback port,
driven with signed requests like Slack's; the mock Slack Web API stands in for Slack and
checks every call against the method catalogue (the `slack_mock` fixture fails the test on
any contract violation)."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
from sqlalchemy import select

from llmgov.bot.app import LISTENER_WORKERS
from llmgov.bot.blocks.owner import CLAIM_ACTION_ID, REGISTER_CALLBACK_ID
from llmgov.models.registry import AuditEvent, Person, Workload
from tests.owner.factories import (
    ADMIN,
    BACKUP,
    NEWBIE,
    OWNER,
    STRANGER,
    audit_events,
    build_registry,
    workload,
)
from tests.slack.conftest import TRIGGER_ID
from tests.slack.scopes import calls_in_source


def registry_state(session) -> list[tuple]:
    """Everything a request could change: workloads, people and the audit trail."""
    session.expire_all()
    workloads = [
        (w.slug, w.owner_id, w.backup_owner_id, w.status, w.budget_monthly)
        for w in session.scalars(select(Workload).order_by(Workload.slug))
    ]
    people = [p.slack_id for p in session.scalars(select(Person).order_by(Person.id))]
    audits = session.scalars(select(AuditEvent.id)).all()
    return [workloads, people, audits]


def response(slack_mock, count: int = 1) -> dict:
    """The last message posted to the response_url (respond())."""
    return slack_mock.wait_for("response_url", count)[-1].args


def test_healthz(slack_server):
    reply = slack_server.get("/healthz")
    assert reply.status == 200
    assert reply.json() == {"ok": True}


def test_signed_list_is_acked_then_answered_at_the_response_url(slack_server, slack_mock, session):
    registry = build_registry(session)
    reply = slack_server.command("list team:search", STRANGER)
    assert reply.status == 200
    assert reply.body == ""  # a bare ack; the answer goes to the response_url
    answer = response(slack_mock)
    assert answer["response_type"] == "ephemeral"
    assert answer["text"].startswith("Workloads of team search: 4 workloads")
    texts = [b["text"]["text"] for b in answer["blocks"] if b["type"] == "section"]
    assert texts[0] == "*Workloads of team search* · 4 workloads, 1 without an owner"
    assert any(t.startswith(f"*{registry.owned}*") and f"<@{OWNER}>" in t for t in texts)
    # the only Web API call is Bolt's lazy auth.test, through the shared recording client
    assert [c.method for c in slack_mock.state.calls] == ["auth.test", "response_url"]


def test_claim_over_http_changes_the_registry_and_is_audited(slack_server, slack_mock, session):
    registry = build_registry(session)
    assert slack_server.command(f"claim {registry.unowned}", NEWBIE).status == 200
    answer = response(slack_mock)
    assert answer["text"] == f"✅ You now own *{registry.unowned}*."
    assert workload(session, registry.unowned).owner.slack_id == NEWBIE
    (event,) = audit_events(session)
    assert (event.action, event.actor, event.outcome) == ("owner.claim", NEWBIE, "applied")


def test_refusal_over_http_says_why_and_is_audited(slack_server, slack_mock, session):
    registry = build_registry(session)
    slack_server.command(f"assign {registry.owned} <@{NEWBIE}|nina>", STRANGER)
    answer = response(slack_mock)
    assert answer["text"] == (
        f"🚫 Not done: only the owner <@{OWNER}>, the backup owner <@{BACKUP}> or a "
        f"governance admin can reassign {registry.owned}."
    )
    assert workload(session, registry.owned).owner.slack_id == OWNER
    (event,) = audit_events(session)
    assert (event.outcome, event.actor, event.action) == ("refused", STRANGER, "owner.assign")


def test_admin_from_settings_may_retire(slack_server, slack_mock, session):
    registry = build_registry(session)
    slack_server.command(f"retire {registry.owned}", ADMIN)
    assert response(slack_mock)["text"] == f"✅ *{registry.owned}* is retired."
    assert workload(session, registry.owned).status == "retired"


def test_parse_error_answers_with_an_example(slack_server, slack_mock, session):
    build_registry(session)
    before = registry_state(session)
    slack_server.command("budget search-summaries lots", OWNER)
    answer = response(slack_mock)
    assert answer["text"] == (
        "⚠️ `lots` is not an amount of money. For example: /llm-owner budget search-summaries 4000"
    )
    assert registry_state(session) == before


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param({"secret": "not-the-signing-secret"}, id="bad-signature"),
        pytest.param({"signature": "v0=" + "0" * 64}, id="forged-signature"),
        pytest.param({"age": 301}, id="timestamp-over-5-minutes-old"),
        pytest.param(
            {"age": -310}, id="timestamp-over-5-minutes-ahead"
        ),  # margin: ts is whole seconds
        pytest.param({"omit": ("X-Slack-Signature",)}, id="no-signature-header"),
        pytest.param({"omit": ("X-Slack-Request-Timestamp",)}, id="no-timestamp-header"),
        pytest.param({"omit": ("X-Slack-Signature", "X-Slack-Request-Timestamp")}, id="no-headers"),
    ],
)
def test_unverified_requests_get_401_and_change_nothing(slack_server, slack_mock, session, tamper):
    registry = build_registry(session)
    before = registry_state(session)
    if "age" in tamper:  # computed now, not when the test was collected
        tamper = {"timestamp": int(time.time()) - tamper["age"]}
    reply = slack_server.command(f"claim {registry.unowned}", STRANGER, **tamper)
    assert reply.status == 401
    assert reply.json() == {"error": "invalid request"}
    time.sleep(0.3)  # a listener, had one started, would have answered by now
    assert registry_state(session) == before
    assert slack_mock.state.calls == []  # no Web API call, nothing at the response_url


def test_register_opens_the_modal_then_the_submission_creates_the_workload(
    slack_server, slack_mock, session
):
    build_registry(session)
    slack_server.command("register", NEWBIE)
    (opened,) = slack_mock.wait_for("views.open")
    assert opened.args["trigger_id"] == TRIGGER_ID
    view = opened.args["view"]
    assert view["callback_id"] == REGISTER_CALLBACK_ID
    assert slack_mock.calls_to("response_url") == []  # the modal is the answer

    values = {
        "slug": "support-triage",
        "name": "Support ticket triage",
        "team": "search",
        "feature": "triage",
        "customer": "all",
        "budget": "1,500",
        "exit_strategy": "Haiku first; Llama 3.1 8B evaluated",
    }
    state = {
        name: {"value": {"type": "plain_text_input", "value": v}} for name, v in values.items()
    }
    state["platform"] = {
        "value": {"type": "static_select", "selected_option": {"value": "bedrock"}}
    }
    state["owner"] = {"value": {"type": "users_select", "selected_user": NEWBIE}}
    submission = {
        "type": "view_submission",
        "team": {"id": "T0TEST"},
        "user": {"id": NEWBIE},
        "api_app_id": "A0LLMGOV",
        "view": {**view, "id": "V0001", "state": {"values": state}},
    }
    reply = slack_server.interaction(submission)
    assert reply.status == 200 and reply.body == ""  # the modal closes
    answer = response(slack_mock)
    assert answer["text"] == f"✅ Registered *support-triage*, owned by <@{NEWBIE}>."
    created = workload(session, "support-triage")
    assert created.owner.slack_id == NEWBIE
    assert created.budget_monthly == Decimal("1500")

    # the same slug again, with a bad budget: errors next to the fields, nothing written
    before = registry_state(session)
    state["budget"] = {"value": {"type": "plain_text_input", "value": "a lot"}}
    reply = slack_server.interaction(submission)
    assert reply.status == 200
    errors = reply.json()
    assert errors["response_action"] == "errors"
    assert set(errors["errors"]) == {"slug", "budget"}
    assert "already registered" in errors["errors"]["slug"]
    assert registry_state(session) == before


def test_claim_button(slack_server, slack_mock, session):
    registry = build_registry(session)
    payload = {
        "type": "block_actions",
        "team": {"id": "T0TEST"},
        "user": {"id": STRANGER},
        "api_app_id": "A0LLMGOV",
        "container": {"type": "message", "is_ephemeral": True},
        "channel": {"id": "C0GOVERN01"},
        "response_url": slack_server.response_url,
        "trigger_id": TRIGGER_ID,
        "actions": [
            {
                "type": "button",
                "action_id": CLAIM_ACTION_ID,
                "block_id": "b1",
                "value": registry.discovered,
                "action_ts": "1700000000.000100",
            }
        ],
    }
    assert slack_server.interaction(payload).status == 200
    answer = response(slack_mock)
    assert answer["replace_original"] is False
    assert answer["text"] == f"✅ You now own *{registry.discovered}*."
    claimed = workload(session, registry.discovered)
    assert claimed.owner.slack_id == STRANGER and claimed.status == "active"


def test_home_tab_is_published_on_app_home_opened(slack_server, slack_mock, session):
    registry = build_registry(session)
    event = {"type": "app_home_opened", "user": OWNER, "channel": "D0OWNER01", "tab": "home"}
    assert slack_server.event(event).status == 200
    (published,) = slack_mock.wait_for("views.publish")
    assert published.args["user_id"] == OWNER
    home = published.args["view"]
    assert home["type"] == "home"
    assert registry.owned in json.dumps(home["blocks"])


def test_every_call_is_one_the_code_makes_and_the_pool_is_large(
    slack_server, slack_mock, session, bolt_app
):
    registry = build_registry(session)
    slack_server.command("register", NEWBIE)
    slack_server.command(f"show {registry.owned}", NEWBIE)
    slack_server.event({"type": "app_home_opened", "user": OWNER, "tab": "home"})
    slack_mock.wait_for("views.publish")
    slack_mock.wait_for("response_url")
    known = set(calls_in_source()) | {"auth.test", "response_url"}  # Bolt's own, respond()
    assert {c.method for c in slack_mock.state.calls} <= known
    assert bolt_app.listener_runner.listener_executor._max_workers == LISTENER_WORKERS
    # the shared client recorded and counted the calls it made
    stats = bolt_app.client.stats.snapshot()
    assert stats["views.open"] == {"ok": 1} and stats["views.publish"] == {"ok": 1}

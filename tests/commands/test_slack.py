"""`/llm-cost` and `/llm-decide` through a real Bolt app behind the real WSGI app, with signed
requests; the mock Slack Web API records (and contract-checks) every call, and captures
what `respond()` posts to the response_url."""

from __future__ import annotations

import json
import time
from logging import getLogger

import pytest
from slack_sdk import WebClient
from sqlalchemy import select

from llmgov.bot.listeners.events.app_home import app_home_opened
from llmgov.models.governance import DecisionRecord
from llmgov.models.registry import AuditEvent
from tests.commands.world import AS_OF
from tests.slack.conftest import TRIGGER_ID, slash_body
from tests.support.slack_mock import Fault

ANA = "U0ANA0001"
CHANNEL = "C0GOVERN01"


@pytest.fixture(autouse=True)
def today_is_the_worlds(monkeypatch):
    monkeypatch.setattr("llmgov.commands.cost.today_utc", lambda: AS_OF)


def command(server, name: str, text: str, user: str = ANA):
    return server.post(slash_body(text, user, server.response_url, command=name))


def responses(slack_mock, count: int) -> list[dict]:
    return [call.args for call in slack_mock.wait_for("response_url", count)]


def block_types(message: dict) -> list[str]:
    return [block["type"] for block in message["blocks"]]


def interaction(user: str, action_id: str, value: str, **extra) -> dict:
    return {
        "type": "block_actions",
        "team": {"id": "T0TEST"},
        "user": {"id": user},
        "api_app_id": "A0LLMGOV",
        "trigger_id": TRIGGER_ID,
        "actions": [{"action_id": action_id, "block_id": "b", "value": value, "type": "button"}],
        **extra,
    }


def test_cost_is_acked_answered_then_given_its_chart_in_a_dm(slack_server, slack_mock, world):
    started = time.monotonic()
    reply = command(slack_server, "/llm-cost", "search-summaries 7d")
    acked = time.monotonic() - started
    assert reply.status == 200 and reply.body == ""  # a bare ack; the answer follows
    first, second = responses(slack_mock, 2)
    assert first["response_type"] == "ephemeral"
    assert first["text"].startswith("search-summaries: $1,125.48 last 7 days")
    assert "image" not in block_types(first)
    # the chart of a private answer goes to the user's DM, never to the channel
    (opened,) = slack_mock.calls_to("conversations.open")
    assert opened.args["users"] == ANA
    (completed,) = slack_mock.calls_to("files.completeUploadExternal")
    assert completed.args["channel_id"] == "D0ANA0001"
    file_id = json.loads(completed.args["files"])[0]["id"]
    assert slack_mock.calls_to("upload")[0].args["file_id"] == file_id
    # then the answer is replaced in place, now showing the chart
    assert second["replace_original"] is True
    image = next(b for b in second["blocks"] if b["type"] == "image")
    assert image["slack_file"] == {"id": file_id}
    assert second["blocks"][0] == first["blocks"][0]
    assert acked < 3.0


class TestWithAChartWorker:
    """As `llmgov serve` runs: charts drawn in a process of their own (bot/chart_worker.py)."""

    @pytest.fixture
    def chart_worker(self):
        from llmgov.bot.chart_worker import ChartWorker

        worker = ChartWorker()
        yield worker
        worker.shutdown()

    @pytest.fixture
    def bolt_app(self, settings, session_factory, answers, chart_worker):
        from llmgov.bot.app import build_app

        return build_app(
            settings,
            session_factory,
            token_verification_enabled=False,
            answers=answers,
            charts=chart_worker,
        )

    def test_the_worker_draws_the_chart_that_is_uploaded(
        self, slack_server, slack_mock, world, chart_worker
    ):
        command(slack_server, "/llm-cost", "search-summaries 7d")
        _, second = responses(slack_mock, 2)
        assert chart_worker.drawn == 1
        (completed,) = slack_mock.calls_to("files.completeUploadExternal")
        file_id = json.loads(completed.args["files"])[0]["id"]
        image = next(b for b in second["blocks"] if b["type"] == "image")
        assert image["slack_file"] == {"id": file_id}
        assert slack_mock.calls_to("upload")[0].args["_raw_bytes"] > 10_000  # a real PNG


def test_public_answers_in_the_channel_with_the_chart_there(slack_server, slack_mock, world):
    command(slack_server, "/llm-cost", "team:search mtd public")
    first, second = responses(slack_mock, 2)
    assert first["response_type"] == second["response_type"] == "in_channel"
    assert slack_mock.calls_to("conversations.open") == []
    (completed,) = slack_mock.calls_to("files.completeUploadExternal")
    assert completed.args["channel_id"] == CHANNEL


def test_a_chart_that_cannot_be_uploaded_never_fails_the_answer(slack_server, slack_mock, world):
    slack_mock.fail_next("files.completeUploadExternal", Fault(400, error="not_in_channel"))
    command(slack_server, "/llm-cost", "all 30d public")
    first, second = responses(slack_mock, 2)
    assert first["text"] == second["text"]
    assert "image" not in block_types(second)
    notes = [e["text"] for b in second["blocks"] if b["type"] == "context" for e in b["elements"]]
    assert ":bar_chart: No chart: I am not in this channel. `/invite @llmgov` to get one." in notes


def test_cost_parse_error_is_ephemeral_with_an_example(slack_server, slack_mock, world):
    command(slack_server, "/llm-cost", "team:search <!channel>")
    (answer,) = responses(slack_mock, 1)
    assert answer["response_type"] == "ephemeral"
    assert answer["text"].startswith(
        "`&lt;!channel&gt;` cannot be a scope: name a workload, @person, team:X, feature:X, "
        "customer:X or all."
    )
    assert "For example: `/llm-cost team:search 30d`" in answer["text"]
    time.sleep(0.2)
    assert slack_mock.calls_to("files.getUploadURLExternal") == []


def test_details_button_answers_below_with_its_own_chart(slack_server, slack_mock, world):
    payload = interaction(
        ANA,
        "llm_cost_open",
        "search-rerank 30d",
        container={"type": "message", "is_ephemeral": True},
        channel={"id": CHANNEL},
        response_url=slack_server.response_url,
    )
    assert slack_server.interaction(payload).status == 200
    (answer,) = responses(slack_mock, 1)
    assert answer["replace_original"] is False  # a new answer; the clicked one stays
    assert answer["text"].startswith("search-rerank: $1,505")
    assert any(b["type"] == "image" for b in answer["blocks"])


def test_decide_without_argument_opens_the_form_first(slack_server, slack_mock, world):
    command(slack_server, "/llm-decide", "")
    (opened,) = slack_mock.wait_for("views.open")
    assert opened.args["trigger_id"] == TRIGGER_ID
    view = opened.args["view"]
    assert view["callback_id"] == "llm_decide_form"
    assert slack_mock.calls_to("response_url") == []

    def submit(values: dict) -> dict:
        state = {k: {"value": {"type": "plain_text_input", "value": v}} for k, v in values.items()}
        body = {
            "type": "view_submission",
            "team": {"id": "T0TEST"},
            "user": {"id": ANA},
            "api_app_id": "A0LLMGOV",
            "view": {**view, "id": "V0FORM001", "state": {"values": state}},
        }
        reply = slack_server.interaction(body)
        assert reply.status == 200
        return reply.json()

    errors = submit({"slug": "search-sumaries", "peak_to_mean": "0.3"})
    assert errors == {
        "response_action": "errors",
        "errors": {
            "peak_to_mean": "Give a ratio from 1 to 1,000 (peak hour / mean hour), like 2.5."
        },
    }
    errors = submit({"slug": "search-sumaries"})
    assert errors["errors"] == {
        "slug": "There is no workload search-sumaries; check /llm-owner list."
    }
    errors = submit({"model": "x"})
    assert "slug" in errors["errors"]

    loading = submit({"slug": "search-summaries"})
    assert loading["response_action"] == "update"
    assert "Working out the numbers" in json.dumps(loading["view"])
    (updated,) = slack_mock.wait_for("views.update")
    assert updated.args["view_id"] == "V0FORM001"
    result = updated.args["view"]
    assert result["blocks"][1]["text"]["text"].startswith("*:cloud: Stay on Bedrock*")


def test_decide_answers_and_the_record_button_keeps_the_decision(
    slack_server, slack_mock, world, session
):
    command(slack_server, "/llm-decide", "search-summaries")
    (answer,) = responses(slack_mock, 1)
    assert answer["response_type"] == "ephemeral"
    assert answer["text"].startswith("search-summaries: Stay on Bedrock.")
    button = answer["blocks"][-1]["elements"][0]
    assert button["action_id"] == "llm_decide_record"
    payload = interaction(
        ANA,
        "llm_decide_record",
        button["value"],
        container={"type": "message", "is_ephemeral": True},
        channel={"id": CHANNEL},
        response_url=slack_server.response_url,
    )
    assert slack_server.interaction(payload).status == 200
    _, receipt = responses(slack_mock, 2)
    record = session.scalar(select(DecisionRecord))
    assert receipt["text"].startswith(
        f":memo: Decision #{record.id} recorded for *search-summaries*"
    )
    assert (record.decided_by, record.recommendation) == (ANA, "bedrock")
    assert record.inputs["request"] == "search-summaries"
    assert record.outputs["recommendation"] == "bedrock"
    assert session.scalar(select(AuditEvent.action).where(AuditEvent.actor == ANA)) == (
        "decision.record"
    )


def test_home_tab_shows_my_workloads_with_buttons_into_both_commands(slack_mock, deps, world):
    client = WebClient(token="xoxb-test", base_url=slack_mock.url)
    app_home_opened(
        {"type": "app_home_opened", "user": ANA, "tab": "home"},
        client,
        {"llmgov": deps},
        getLogger("test"),
    )
    (published,) = slack_mock.calls_to("views.publish")
    assert published.args["user_id"] == ANA
    blocks = published.args["view"]["blocks"]
    assert blocks[1]["text"]["text"].startswith("*Your workloads* (1) · $3,120.98 this month")
    row = blocks[2]["text"]["text"]
    assert row.startswith("*search-summaries* · <@U0ANA0001> · search\nMTD $3,120.98 · month end")
    actions = [e["action_id"] for e in blocks[3]["elements"]]
    assert actions == ["llm_cost_open", "llm_decide_open"]
    assert not any("Ownership gaps" in json.dumps(b) for b in blocks)  # not an admin


def test_home_tab_of_an_admin_has_the_gap_review(slack_mock, deps, world):
    client = WebClient(token="xoxb-test", base_url=slack_mock.url)
    admin = next(iter(deps.settings.admins))
    app_home_opened(
        {"type": "app_home_opened", "user": admin, "tab": "home"},
        client,
        {"llmgov": deps},
        getLogger("test"),
    )
    blocks = slack_mock.calls_to("views.publish")[0].args["view"]["blocks"]
    assert blocks[1]["text"]["text"].startswith("You own no workloads.")
    assert any(b["type"] == "header" and "gap" in b["text"]["text"].lower() for b in blocks[2:])


def test_home_buttons_answer_in_a_modal(slack_server, slack_mock, world):
    payload = interaction(
        ANA,
        "llm_decide_open",
        "search-summaries",
        container={"type": "view", "view_id": "VHOME"},
        view={"id": "VHOME", "type": "home"},
    )
    assert slack_server.interaction(payload).status == 200
    (opened,) = slack_mock.wait_for("views.open")
    assert opened.args["trigger_id"] == TRIGGER_ID
    (updated,) = slack_mock.wait_for("views.update")
    assert updated.args["view"]["blocks"][0]["text"]["text"] == (
        "Bedrock or self-host? · search-summaries"
    )
    assert slack_mock.calls_to("response_url") == []

"""Ack at once, answer on the answer pool (bot/answers.py), through the real Bolt app over
signed HTTP. The pool here has one thread, held busy by a job the test releases, so each
test can show what happens while answers are waiting. Answers shown in a modal (the
`/llm-decide` form, buttons on the Home tab) have no response_url: a failure or "too busy"
replaces their loading view."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from unittest.mock import Mock

import pytest
from slack_sdk import WebClient
from slack_sdk.models.blocks import SectionBlock

from llmgov.bot import metrics
from llmgov.bot.answers import (
    SOMETHING_WENT_WRONG,
    TOO_BUSY,
    AnswerPool,
    ack_then_answer,
    report_failure,
)
from llmgov.bot.app import RedactSecrets
from llmgov.bot.blocks.common import Message
from llmgov.bot.blocks.decide import FORM_CALLBACK, decide_form
from llmgov.bot.listeners.deps import AppDeps
from llmgov.bot.listeners.views.decide_modal import show_in_modal
from tests.owner.factories import NEWBIE, STRANGER, build_registry
from tests.slack.conftest import BOT_TOKEN, TRIGGER_ID, slash_body

MAX_QUEUED = 5
FORM_VIEW_ID = "V0DECIDE1"


def command(server, text: str, number: int):
    """The `number`th `/llm-owner TEXT`: its own response_url, so not a replay of another."""
    return server.post(slash_body(text, STRANGER, f"{server.response_url}/{number}"))


def answer_counts(outcome: str) -> float:
    return metrics.REGISTRY.get("llmgov_answers_total", {"outcome": outcome})


def submit_decide_form(server, **typed: str):
    """Submit the `/llm-decide` form with the fields `typed` (a what-if needs no registry)."""
    state = {key: {"value": {"type": "plain_text_input", "value": v}} for key, v in typed.items()}
    view = {**decide_form().to_dict(), "id": FORM_VIEW_ID, "state": {"values": state}}
    submission = {
        "type": "view_submission",
        "team": {"id": "T0TEST"},
        "user": {"id": STRANGER},
        "api_app_id": "A0LLMGOV",
        "view": view,
    }
    return server.interaction(submission)


def modal_texts(call) -> list[str]:
    """The section texts of the view a views.update call shows."""
    return [block["text"]["text"] for block in call.args["view"]["blocks"] if "text" in block]


@pytest.fixture
def answers() -> Iterator[AnswerPool]:
    """Overrides tests/slack's pool: one thread, five answers at most in hand."""
    pool = AnswerPool(workers=1, max_queued=MAX_QUEUED)
    yield pool
    pool.shutdown(wait=True)


@pytest.fixture
def busy(answers) -> Iterator[threading.Event]:
    """Hold the pool's only thread until the test sets the returned event."""
    release = threading.Event()
    answers.submit(lambda: release.wait(30), None, logging.getLogger(__name__))
    yield release
    release.set()


def test_commands_are_acked_while_every_answer_waits(
    slack_server, slack_mock, answers, busy, session
):
    build_registry(session)
    replies = [command(slack_server, "list team:search", n) for n in range(MAX_QUEUED - 1)]
    assert [(r.status, r.body) for r in replies] == [(200, "")] * (MAX_QUEUED - 1)
    assert slack_mock.calls_to("response_url") == []  # acked, not answered yet
    assert answers.unfinished == MAX_QUEUED  # the busy job and the four answers

    busy.set()
    assert answers.wait_idle(timeout=30)
    texts = [call.args["text"] for call in slack_mock.calls_to("response_url")]
    assert len(texts) == MAX_QUEUED - 1
    assert all(text.startswith("Workloads of team search: 4") for text in texts), texts


def test_a_modal_opens_while_answers_wait(slack_server, slack_mock, answers, busy):
    """The trigger_id expires 3 s after the command: the modal is not queued behind answers."""
    assert slack_server.command("register", NEWBIE).status == 200
    (opened,) = slack_mock.wait_for("views.open")
    assert opened.args["trigger_id"] == TRIGGER_ID
    assert answers.unfinished == 1  # only the busy job: nothing was queued


def test_past_the_queue_limit_the_user_is_asked_to_come_back(
    slack_server, slack_mock, answers, busy, session
):
    build_registry(session)
    refused, answered = answer_counts("refused_busy"), answer_counts("answered")
    for n in range(MAX_QUEUED - 1):
        assert command(slack_server, "list", n).status == 200
    assert command(slack_server, "list", MAX_QUEUED).status == 200  # one too many
    (told,) = slack_mock.wait_for("response_url")
    assert (told.args["text"], told.args["response_type"]) == (TOO_BUSY, "ephemeral")
    assert metrics.REGISTRY.get("llmgov_answers_unfinished") == MAX_QUEUED
    busy.set()
    assert answers.wait_idle(timeout=30)
    assert len(slack_mock.calls_to("response_url")) == MAX_QUEUED  # the busy note + 4 answers
    # /metrics shows it: one refused, the busy job and 4 answers done, nothing waiting
    assert answer_counts("refused_busy") == refused + 1
    assert answer_counts("answered") == answered + MAX_QUEUED
    assert metrics.REGISTRY.get("llmgov_answers_unfinished") == 0


def test_a_failed_answer_is_logged_and_the_user_told(
    slack_server, slack_mock, answers, monkeypatch, caplog, settings
):
    def broken(deps, command, client):
        raise RuntimeError(f"database down (token {settings.slack_bot_token})")

    monkeypatch.setattr("llmgov.bot.listeners.commands.llm_owner.reply_llm_owner", broken)
    caplog.handler.addFilter(RedactSecrets(settings.secrets()))  # as `llmgov serve` installs it
    failed = answer_counts("failed")
    assert slack_server.command("list", STRANGER).status == 200
    assert answers.wait_idle(timeout=30)
    assert answer_counts("failed") == failed + 1
    (told,) = slack_mock.wait_for("response_url")
    assert (told.args["text"], told.args["response_type"]) == (SOMETHING_WENT_WRONG, "ephemeral")
    (failure,) = [r for r in caplog.records if r.getMessage() == "listener failed: RuntimeError"]
    assert failure.exc_info is not None and "database down" in str(failure.exc_info[1])
    assert "database down (token [redacted])" in caplog.text
    assert settings.slack_bot_token not in caplog.text


def test_a_decide_form_is_acked_with_a_loading_view_and_answered_on_the_pool(
    slack_server, slack_mock, answers, busy
):
    reply = submit_decide_form(slack_server, tokens_per_month="2B")
    assert reply.status == 200
    assert reply.json()["response_action"] == "update"
    assert "Working out the numbers" in json.dumps(reply.json()["view"])
    assert slack_mock.calls_to("views.update") == []  # acked; the decision waits its turn
    assert answers.unfinished == 2  # the busy job and the decision

    busy.set()
    assert answers.wait_idle(timeout=30)
    (updated,) = slack_mock.calls_to("views.update")
    assert updated.args["view_id"] == FORM_VIEW_ID
    assert updated.args["view"]["callback_id"] != FORM_CALLBACK  # the answer, not the form
    # a volume alone, no prices: not enough data to decide (never a recommendation)
    assert any(
        text.startswith("*:grey_question: Not enough data to decide*")
        for text in modal_texts(updated)
    )


def test_a_failed_decide_form_answer_replaces_the_loading_view(
    slack_server, slack_mock, answers, monkeypatch, caplog
):
    def broken(*args, **kwargs):
        raise RuntimeError("database down")

    monkeypatch.setattr("llmgov.bot.listeners.views.decide_modal.build_decision", broken)
    assert submit_decide_form(slack_server, tokens_per_month="2B").json()["response_action"] == (
        "update"
    )
    assert answers.wait_idle(timeout=30)
    (updated,) = slack_mock.calls_to("views.update")
    assert updated.args["view_id"] == FORM_VIEW_ID
    assert modal_texts(updated) == [SOMETHING_WENT_WRONG]
    assert any(r.getMessage() == "listener failed: RuntimeError" for r in caplog.records)


def test_past_the_queue_limit_a_decide_form_says_so_in_the_modal(
    slack_server, slack_mock, answers, busy
):
    for n in range(MAX_QUEUED - 1):
        assert command(slack_server, "list", n).status == 200
    assert submit_decide_form(slack_server, tokens_per_month="2B").status == 200  # one too many
    (told,) = slack_mock.wait_for("views.update")
    assert (told.args["view_id"], modal_texts(told)) == (FORM_VIEW_ID, [TOO_BUSY])
    assert slack_mock.calls_to("response_url") == []  # the queued answers still wait
    busy.set()
    assert answers.wait_idle(timeout=30)


def test_a_home_tab_button_opens_its_modal_at_once_and_answers_on_the_pool(
    settings, session_factory, slack_mock, answers, busy
):
    deps = AppDeps.build(settings, session_factory, answers)
    client = WebClient(token=BOT_TOKEN, base_url=slack_mock.url)
    body = {"trigger_id": TRIGGER_ID, "view": {"id": "VHOME", "type": "home"}}
    answered_in: list[str] = []

    def answer() -> Message:
        answered_in.append(threading.current_thread().name)
        return Message(text="the answer", blocks=(SectionBlock(text="the answer"),))

    show_in_modal(client, body, "A title", answer, deps=deps, logger=logging.getLogger(__name__))
    (opened,) = slack_mock.calls_to("views.open")  # before the pool is free: the trigger lives 3 s
    assert opened.args["trigger_id"] == TRIGGER_ID
    assert slack_mock.calls_to("views.update") == [] and answered_in == []

    busy.set()
    assert answers.wait_idle(timeout=30)
    (updated,) = slack_mock.calls_to("views.update")
    assert list(slack_mock.state.views) == [updated.args["view_id"]]  # the view it opened
    assert updated.args["view"]["title"]["text"] == "A title"
    assert modal_texts(updated) == ["the answer"]
    assert len(answered_in) == 1 and answered_in[0].startswith("llmgov-answer")


def test_without_a_pool_the_answer_runs_in_the_listener_thread(settings, session_factory):
    """`llmgov ask` and listener tests: no pool, the answer runs at once, errors propagate."""
    deps = AppDeps.build(settings, session_factory)
    calls: list[str] = []
    ack_then_answer(
        lambda: calls.append("ack"),
        deps,
        lambda: calls.append(threading.current_thread().name),
        respond=Mock(),
        logger=logging.getLogger(__name__),
    )
    assert calls == ["ack", threading.current_thread().name]
    with pytest.raises(ZeroDivisionError):
        ack_then_answer(Mock(), deps, lambda: 1 / 0, respond=Mock(), logger=Mock())


def test_with_a_pool_the_ack_comes_first_and_the_answer_on_a_pool_thread(
    settings, session_factory, answers
):
    deps = AppDeps.build(settings, session_factory, answers)
    calls: list[str] = []
    ack_then_answer(
        lambda: calls.append("ack"),
        deps,
        lambda: calls.append(threading.current_thread().name),
        respond=Mock(),
        logger=logging.getLogger(__name__),
    )
    assert answers.wait_idle(timeout=10)
    assert calls[0] == "ack" and calls[1].startswith("llmgov-answer")


def test_wait_idle_reports_a_timeout(answers, busy):
    assert not answers.wait_idle(timeout=0.05)
    busy.set()
    assert answers.wait_idle(timeout=10)


def test_report_failure_survives_a_failing_respond():
    logger = Mock(logging.Logger)
    respond = Mock(side_effect=OSError("response_url unreachable"))
    report_failure(ValueError("boom"), logger, respond)
    logger.exception.assert_called_once()
    respond.assert_called_once_with(text=SOMETHING_WENT_WRONG, response_type="ephemeral")
    logger.warning.assert_called_once_with("could not tell the user about the failure")

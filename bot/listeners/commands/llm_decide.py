"""`/llm-decide`: ack at once; with no argument open the form before anything slow; else
answer with the decision (ephemeral) and its "Record decision" button."""

from __future__ import annotations

from datetime import date
from logging import Logger
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from llmgov.bot.answers import ack_then_answer
from llmgov.bot.blocks.common import Message
from llmgov.bot.blocks.decide import (
    decide_error_message,
    decide_form,
    decide_help_message,
    decide_message,
)
from llmgov.bot.listeners.commands.base import Reply, SlashCommand, respond_with
from llmgov.bot.listeners.deps import AppDeps, deps_from
from llmgov.bot.prices import decision_prices
from llmgov.commands import cost as cost_commands
from llmgov.commands.decide import (
    COMMAND,
    DecideRequest,
    HelpRequest,
    OpenForm,
    build_decision,
    parse_decide_text,
)
from llmgov.commands.parsing import ParseError

NEEDS_SLACK = (
    "Give a workload or key=values: the form only opens in Slack. "
    "E.g. `llmgov decide search-summaries`."
)


def decide_answer(deps: AppDeps, text: str, *, today: date | None = None) -> tuple[Message, str]:
    """The answer to `/llm-decide TEXT` (not the form) and its outcome."""
    today = today or cost_commands.today_utc()
    try:
        request = parse_decide_text(text, today=today)
        if isinstance(request, HelpRequest):
            return decide_help_message(), "ok"
        if isinstance(request, OpenForm):
            return decide_error_message(NEEDS_SLACK, "/llm-decide search-summaries"), "error"
        assert isinstance(request, DecideRequest)
        with deps.session_factory() as session:
            decision = build_decision(session, request, prices=decision_prices(session))
    except ParseError as error:
        return decide_error_message(error.message, error.example), "error"
    return decide_message(decision), "ok"


def opens_the_form(command: dict[str, Any]) -> bool:
    """`/llm-decide` with no argument, from Slack: the answer is the form."""
    return not (command.get("text") or "").strip() and bool(command.get("trigger_id"))


def reply_llm_decide(
    deps: AppDeps, command: dict[str, Any], client: WebClient | None
) -> Reply | None:
    """The answer to `/llm-decide TEXT`; None when the form was opened instead."""
    text = command.get("text") or ""
    if client is not None and opens_the_form(command):
        # The trigger expires 3 s after the command: open the form before any slow work.
        client.views_open(trigger_id=command["trigger_id"], view=decide_form())
        return None
    message, outcome = decide_answer(deps, text)
    return Reply(message, "ok" if outcome == "ok" else "error")


def llm_decide_command(
    ack: Ack,
    command: dict[str, Any],
    respond: Respond,
    client: WebClient,
    context: BoltContext,
    logger: Logger,
) -> None:
    deps = deps_from(context)
    ack_then_answer(
        ack,
        deps,
        lambda: respond_with(respond, reply_llm_decide(deps, command, client)),
        respond=respond,
        logger=logger,
        uses_trigger=opens_the_form(command),
    )


SLASH_COMMAND = SlashCommand(COMMAND, llm_decide_command, reply_llm_decide)


def register(app: App) -> None:
    app.command(COMMAND)(llm_decide_command)


__all__ = [
    "SLASH_COMMAND",
    "decide_answer",
    "decision_prices",
    "llm_decide_command",
    "opens_the_form",
    "register",
    "reply_llm_decide",
]

"""Buttons of `/llm-decide`: "Record decision", and "Bedrock or self-host?" (open a decision).

The Record button carries the request (command text and date), never the figures: the
decision is recomputed from the same inputs as of the same date and stored with who
recorded it, in one transaction with its audit event.
"""

from __future__ import annotations

from datetime import date
from logging import Logger
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject

from llmgov.bot.answers import ack_then_answer
from llmgov.bot.blocks.cost import DECIDE_OPEN_ACTION
from llmgov.bot.blocks.decide import RECORD_ACTION, decide_error_message, recorded_message
from llmgov.bot.listeners.commands.llm_decide import decide_answer, decision_prices
from llmgov.bot.listeners.deps import AppDeps, deps_from
from llmgov.bot.listeners.views.decide_modal import answers_in_a_modal, parse_value, show_in_modal
from llmgov.commands import cost as cost_commands
from llmgov.commands.decide import (
    DecideRequest,
    build_decision,
    decision_to_json,
    parse_decide_text,
)
from llmgov.commands.parsing import ParseError
from llmgov.governance.decisions import record_decision
from llmgov.models.base import transaction

ACTIONS_BLOCK = "decide_actions"


def record(deps, text: str, as_of: date, user: str) -> tuple[int, str | None, str]:
    """Recompute the decision for `text` as of `as_of` and store it: (id, slug, recommendation)."""
    request = parse_decide_text(text, today=as_of)
    if not isinstance(request, DecideRequest):
        raise ParseError("This button has nothing to record.", "/llm-decide search-summaries")
    with transaction(deps.session_factory) as session:
        decision = build_decision(session, request, prices=decision_prices(session))
        outputs = decision_to_json(decision)
        inputs = outputs.pop("inputs")
        inputs["request"] = text
        stored = record_decision(
            session,
            decided_by=user,
            workload_slug=decision.inputs.slug,
            recommendation=decision.recommendation,
            inputs=inputs,
            outputs=outputs,
        )
        return stored.id, decision.inputs.slug, decision.recommendation


def record_decision_action(
    ack: Ack,
    body: dict[str, Any],
    respond: Respond,
    client: WebClient,
    context: BoltContext,
    logger: Logger,
) -> None:
    deps = deps_from(context)
    ack_then_answer(
        ack,
        deps,
        lambda: _record_and_show(deps, body, respond, client),
        respond=respond,
        logger=logger,
    )


def _record_and_show(
    deps: AppDeps, body: dict[str, Any], respond: Respond, client: WebClient
) -> None:
    """Store the decision, then show the receipt where the button was."""
    user = body["user"]["id"]
    value = parse_value(body["actions"][0]["value"])
    as_of = date.fromisoformat(value.get("d") or cost_commands.today_utc().isoformat())
    try:
        record_id, slug, recommendation = record(deps, value["t"], as_of, user)
    except ParseError as error:
        message = decide_error_message(error.message, error.example)
    else:
        message = recorded_message(slug, recommendation, record_id, user)
    view = body.get("view") or {}
    if view.get("type") == "modal":
        # In the form's answer: swap the button for the receipt, keep the rest of the view.
        blocks = [
            ContextBlock(elements=[MarkdownTextObject(text=message.text[:2000])]).to_dict()
            if block.get("block_id") == ACTIONS_BLOCK
            else block
            for block in view.get("blocks", [])
        ]
        client.views_update(
            view_id=view["id"],
            hash=view.get("hash"),
            view={
                "type": "modal",
                "callback_id": view.get("callback_id"),
                "title": view.get("title"),
                "close": view.get("close"),
                "blocks": blocks,
            },
        )
        return
    respond(**message.for_respond("ephemeral", replace_original=False))


def decide_open_action(
    ack: Ack,
    body: dict[str, Any],
    respond: Respond,
    client: WebClient,
    context: BoltContext,
    logger: Logger,
) -> None:
    """ "Bedrock or self-host?" on a cost answer or the Home tab: the decision for a slug."""
    deps = deps_from(context)
    modal = answers_in_a_modal(body)

    def answer() -> None:
        slug = parse_value(body["actions"][0]["value"])["t"]
        if modal:
            title = "Bedrock or self-host?"
            show_in_modal(
                client, body, title, lambda: decide_answer(deps, slug)[0], deps=deps, logger=logger
            )
            return
        message, _ = decide_answer(deps, slug)
        respond(**message.for_respond("ephemeral", replace_original=False))

    ack_then_answer(ack, deps, answer, respond=respond, logger=logger, uses_trigger=modal)


def register(app: App) -> None:
    app.action(RECORD_ACTION)(record_decision_action)
    app.action(DECIDE_OPEN_ACTION)(decide_open_action)


__all__ = ["decide_open_action", "record", "record_decision_action", "register"]

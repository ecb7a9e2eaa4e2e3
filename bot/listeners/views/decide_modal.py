"""The `/llm-decide` form: validate the submission, then answer in the same modal.

Validation is quick (parsing, one lookup) and answers through `ack(response_action="errors")`
so Slack shows each problem under its field. A valid submission is acknowledged with a
loading view at once; the decision is computed after the ack and shown with `views.update`.

`show_in_modal` is the same pattern for buttons on surfaces that have no channel to answer
in (the Home tab, a modal): open or update a loading view first, then the answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from logging import Logger
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from sqlalchemy import select

from bot.blocks.common import Message
from bot.blocks.decide import (
    FLAGS_BLOCK,
    FORM_CALLBACK,
    decide_error_message,
    decision_view,
    form_text,
    loading_view,
    message_view,
)
from bot.listeners.commands.llm_decide import decision_prices
from bot.listeners.deps import deps_from
from commands import cost as cost_commands
from commands.decide import KEYS, DecideRequest, build_decision, parse_decide_text
from commands.parsing import ParseError
from models.registry import Workload


def validate_form(session_factory, values: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The command text the form stands for, and the errors by block id (empty: valid)."""
    text, blocks = form_text(values)
    errors: dict[str, str] = {}
    for part in text.split():
        if "=" not in part:
            continue
        key, _, value = part.partition("=")
        try:
            KEYS[key].parse(value)
        except (ValueError, ArithmeticError) as error:
            reason = KEYS[key].expect if "could not convert" in str(error) else str(error)
            errors[blocks.get(key, FLAGS_BLOCK)] = f"Give {reason}."[:150]
    if errors:
        return text, errors
    slug = next((p for p in text.split() if "=" not in p), None)
    if slug is None and "tokens_per_month" not in blocks:
        errors["slug"] = "Name a registered workload, or give tokens a month for a what-if."
    elif slug is not None:
        with session_factory() as session:
            if session.scalar(select(Workload.id).where(Workload.slug == slug.lower())) is None:
                errors["slug"] = f"There is no workload {slug[:60]}; check /llm-owner list."
    return text, errors


def decide_form_submitted(
    ack: Ack,
    body: dict[str, Any],
    view: dict[str, Any],
    client: WebClient,
    context: BoltContext,
    logger: Logger,
) -> None:
    deps = deps_from(context)
    text, errors = validate_form(deps.session_factory, view["state"]["values"])
    if errors:
        ack(response_action="errors", errors=errors)
        return
    ack(response_action="update", view=loading_view())
    today = cost_commands.today_utc()
    try:
        request = parse_decide_text(text, today=today)
        assert isinstance(request, DecideRequest)  # validate_form ruled out help and empty
        with deps.session_factory() as session:
            result = decision_view(
                build_decision(session, request, prices=decision_prices(session))
            )
    except ParseError as error:
        result = message_view(decide_error_message(error.message, error.example))
    client.views_update(view_id=view["id"], view=result)


def show_in_modal(
    client: WebClient, body: dict[str, Any], title: str, answer: Callable[[], Message]
) -> None:
    """Answer a button on the Home tab or in a modal: a loading view first (a trigger_id
    expires 3 s after the click), then the answer in its place."""
    surface = body.get("view") or {}
    if surface.get("type") == "modal":
        view_id = surface["id"]
        client.views_update(view_id=view_id, view=loading_view())
    else:
        opened = client.views_open(trigger_id=body["trigger_id"], view=loading_view())
        view_id = opened["view"]["id"]
    client.views_update(view_id=view_id, view=message_view(answer(), title))


def parse_value(value: str) -> dict[str, Any]:
    """A button value: JSON from our builders, or plain text (a slug or command text)."""
    try:
        data = json.loads(value)
    except ValueError:
        return {"t": value}
    return data if isinstance(data, dict) else {"t": value}


def register(app: App) -> None:
    app.view(FORM_CALLBACK)(decide_form_submitted)


__all__ = ["decide_form_submitted", "parse_value", "register", "show_in_modal", "validate_form"]

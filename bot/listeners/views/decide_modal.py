"""The `/llm-decide` form: validate the submission, then answer in the same modal.

Validation is quick (each field parsed on its own, one lookup) and answers through
`ack(response_action="errors")` so Slack shows each problem under its field. A valid
submission is acknowledged with a loading view at once; the decision is computed after the
ack and shown with `views.update`.

`show_in_modal` is the same pattern for buttons on surfaces that have no channel to answer
in (the Home tab, a modal): open or update a loading view first, then the answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from logging import Logger
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from sqlalchemy import select

from bot.blocks.common import Message, truncate
from bot.blocks.decide import (
    FORM_CALLBACK,
    decide_error_message,
    decision_view,
    form_fields,
    loading_view,
    message_view,
)
from bot.listeners.commands.llm_decide import decision_prices
from bot.listeners.deps import deps_from
from commands import cost as cost_commands
from commands.decide import BadValue, DecideRequest, build_decision, parse_override
from commands.parsing import ParseError, control_character_problem
from models.registry import Workload, is_slug

MAX_FIELD_ERROR = 150  # what Slack shows under an input


def _field_error(text: str) -> str:
    return truncate(text, MAX_FIELD_ERROR)


def validate_form(
    session_factory, values: dict[str, Any], today: date
) -> tuple[DecideRequest | None, dict[str, str]]:
    """The request the form stands for, or None and the errors by block id.

    Each field is parsed on its own, by the same code as the command's `key=value`s, so a
    value with spaces or `=` is wrong only where it was typed."""
    fields, blocks = form_fields(values)
    errors: dict[str, str] = {}
    slug: str | None = None
    overrides: dict[str, Any] = {}
    for key, value in fields.items():
        block = blocks[key]
        problem = control_character_problem(value, "This field", multiline=False)
        if problem is not None:
            errors.setdefault(block, _field_error(problem))
        elif key == "slug":
            if is_slug(value.lower()):
                slug = value.lower()
            else:
                errors[block] = "Give a workload slug like search-summaries, or leave it empty."
        else:
            try:
                name, parsed = parse_override(key, value)
                overrides[name] = parsed
            except BadValue as error:
                errors.setdefault(block, _field_error(f"Give {error.reason}."))
            except ParseError as error:  # a ticked option the form does not offer (forged)
                errors.setdefault(block, _field_error(error.message))
    if errors:
        return None, errors
    if slug is None and "tokens_per_month" not in overrides:
        return None, {"slug": "Name a registered workload, or give tokens a month for a what-if."}
    if slug is not None:
        with session_factory() as session:
            if session.scalar(select(Workload.id).where(Workload.slug == slug)) is None:
                return None, {"slug": f"There is no workload {slug}; check /llm-owner list."}
    return DecideRequest(slug=slug, overrides=overrides, as_of=today), {}


def decide_form_submitted(
    ack: Ack,
    body: dict[str, Any],
    view: dict[str, Any],
    client: WebClient,
    context: BoltContext,
    logger: Logger,
) -> None:
    deps = deps_from(context)
    today = cost_commands.today_utc()
    request, errors = validate_form(deps.session_factory, view["state"]["values"], today)
    if request is None:
        ack(response_action="errors", errors=errors)
        return
    ack(response_action="update", view=loading_view())
    try:
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

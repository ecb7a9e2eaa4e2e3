"""The `/llm-decide` form: validate the submission, then answer in the same modal.

Validation is quick (each field parsed on its own, one lookup) and answers through
`ack(response_action="errors")` so Slack shows each problem under its field. A valid
submission is acknowledged with a loading view at once; the decision is computed on the
answer pool (`bot.answers`) and shown with `views.update`.

`show_in_modal` is the same pattern for buttons on surfaces that have no channel to answer
in (the Home tab, a modal): open or update a loading view first (in the listener thread:
a trigger_id expires 3 s after the click), then the answer, on the pool.

A modal has no response_url, so `modal_responder` is the `respond` these answers hand to
the pool: a failed answer, or "too busy", replaces the loading view instead of leaving it
spinning.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from logging import Logger
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock
from slack_sdk.models.views import View
from sqlalchemy import select

from llmgov.bot.answers import Responder, answer_later
from llmgov.bot.blocks.common import Message, truncate
from llmgov.bot.blocks.decide import (
    FORM_CALLBACK,
    MODAL_TITLE,
    decide_error_message,
    decision_view,
    form_fields,
    loading_view,
    message_view,
)
from llmgov.bot.listeners.deps import AppDeps, deps_from
from llmgov.bot.prices import decision_prices
from llmgov.commands import cost as cost_commands
from llmgov.commands.decide import BadValue, DecideRequest, build_decision, parse_override
from llmgov.commands.parsing import ParseError, control_character_problem
from llmgov.models.registry import Workload, is_slug

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


def modal_responder(client: WebClient, view_id: str, title: str = MODAL_TITLE) -> Responder:
    """A `respond` for an answer shown in the modal `view_id`: it puts the text (why the answer
    failed, or that we are too busy) in the modal in place of the loading view."""

    def respond(text: str, **_how: Any) -> None:  # response_type etc. mean nothing in a modal
        notice = Message(text=text, blocks=(SectionBlock(text=MarkdownTextObject(text=text)),))
        client.views_update(view_id=view_id, view=message_view(notice, title))

    return respond


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
    # Errors can only be shown under their fields through the ack: validate before it.
    request, errors = validate_form(deps.session_factory, view["state"]["values"], today)
    if request is None:
        ack(response_action="errors", errors=errors)
        return
    ack(response_action="update", view=loading_view())
    view_id = view["id"]
    answer_later(
        deps,
        lambda: client.views_update(view_id=view_id, view=decision_result_view(deps, request)),
        respond=modal_responder(client, view_id),
        logger=logger,
    )


def decision_result_view(deps: AppDeps, request: DecideRequest) -> View:
    """The decision for a valid form, or why there is none (e.g. a model with no price)."""
    try:
        with deps.session_factory() as session:
            return decision_view(build_decision(session, request, prices=decision_prices(session)))
    except ParseError as error:
        return message_view(decide_error_message(error.message, error.example))


def answers_in_a_modal(body: dict[str, Any]) -> bool:
    """A button on the Home tab or in a modal: its answer is a modal (`show_in_modal`),
    opened with the click's trigger_id, so right after the ack, not queued behind answers."""
    return (body.get("view") or {}).get("type") in ("home", "modal")


def show_in_modal(
    client: WebClient,
    body: dict[str, Any],
    title: str,
    answer: Callable[[], Message],
    *,
    deps: AppDeps,
    logger: Logger,
) -> None:
    """Answer a button on the Home tab or in a modal: a loading view first, here (a
    trigger_id expires 3 s after the click), then the answer in its place, on the answer
    pool of `deps`."""
    surface = body.get("view") or {}
    if surface.get("type") == "modal":
        view_id = surface["id"]
        client.views_update(view_id=view_id, view=loading_view())
    else:
        opened = client.views_open(trigger_id=body["trigger_id"], view=loading_view())
        view_id = opened["view"]["id"]

    def show_answer() -> None:
        client.views_update(view_id=view_id, view=message_view(answer(), title))

    answer_later(deps, show_answer, respond=modal_responder(client, view_id, title), logger=logger)


def parse_value(value: str) -> dict[str, Any]:
    """A button value: JSON from our builders, or plain text (a slug or command text)."""
    try:
        data = json.loads(value)
    except ValueError:
        return {"t": value}
    return data if isinstance(data, dict) else {"t": value}


def register(app: App) -> None:
    app.view(FORM_CALLBACK)(decide_form_submitted)


__all__ = [
    "answers_in_a_modal",
    "decide_form_submitted",
    "decision_result_view",
    "modal_responder",
    "parse_value",
    "register",
    "show_in_modal",
    "validate_form",
]

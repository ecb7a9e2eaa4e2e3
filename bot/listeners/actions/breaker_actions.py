"""The breaker card's buttons (Trip, Reset, Ignore 24h, Raise budget) and the Raise budget
modal. Listeners ack first, then call plain functions tests can call with mocks.

Who may act is decided in `guardrails.actions` (owner, backup owner or governance admin);
a refusal is audited there and answered here, ephemerally, with the reason. After a change
the clicked card is replaced in place and every other copy is queued for a `chat.update`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from logging import Logger
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from llmgov.bot.answers import ack_then_answer, answer_later
from llmgov.bot.blocks.breaker import (
    APPROVE_RESET,
    BUDGET_ACTION_ID,
    BUDGET_BLOCK_ID,
    IGNORE,
    RAISE_BUDGET,
    RAISE_BUDGET_CALLBACK_ID,
    REASON_ACTION_ID,
    REASON_BLOCK_ID,
    RESET,
    RESET_CALLBACK_ID,
    TRIP,
    breaker_message,
    raise_budget_modal,
    reset_request_modal,
)
from llmgov.bot.blocks.common import escape_keeping_mentions, truncate
from llmgov.bot.breaker_notify import refresh_breaker_copies
from llmgov.bot.listeners.deps import AppDeps, deps_from
from llmgov.governance.ownership import check_budget
from llmgov.guardrails import actions
from llmgov.guardrails.actions import Outcome, Result
from llmgov.guardrails.aws import ClientFactory
from llmgov.guardrails.card import load_card
from llmgov.models.base import MAX_MONEY, utcnow
from llmgov.models.errors import BadInput

log = logging.getLogger(__name__)

MAX_ERROR_TEXT = 300  # Slack shows modal input errors in a small space
CENT = Decimal("0.01")

DECISIONS: dict[str, Callable[..., Outcome]] = {
    "trip": actions.trip,
    "reset": actions.reset,
    "ignore": actions.ignore,
}


# ---- the buttons -----------------------------------------------------------------------


def handle_decision(
    verb: str,
    body: dict[str, Any],
    respond: Respond,
    deps: AppDeps,
    client: WebClient | None,
    *,
    clients: ClientFactory | None = None,
    now: datetime | None = None,
) -> Outcome | None:
    """Trip, Reset or Ignore for the clicking user; answer them and refresh the card."""
    now = now or utcnow()
    actor = body["user"]["id"]
    slug = body["actions"][0]["value"]
    options: dict[str, Any] = {"actor": actor, "admins": deps.admins(client), "now": now}
    if verb in ("trip", "reset"):
        options["clients"] = clients
    try:
        outcome = DECISIONS[verb](deps.session_factory, slug, **options)
    except BadInput as error:
        _tell(respond, str(error))
        return None
    if outcome.result in (Result.APPLIED, Result.DRY_RUN):
        _show_new_card(respond, deps, outcome.slug, now)
        for other in outcome.also:  # workloads sharing the denied role: their cards too
            refresh_breaker_copies(deps.session_factory, other, now)
    _tell(respond, outcome.message)
    return outcome


def open_raise_budget(
    body: dict[str, Any],
    respond: Respond,
    deps: AppDeps,
    client: WebClient,
    *,
    now: datetime | None = None,
) -> bool:
    """Open the Raise budget modal, after checking the user may; True when it was opened."""
    return _open_breaker_modal(body, respond, deps, client, "raise_budget", raise_budget_modal, now)


def open_reset_request(
    body: dict[str, Any],
    respond: Respond,
    deps: AppDeps,
    client: WebClient,
    *,
    now: datetime | None = None,
) -> bool:
    """Open the modal asking why to reset, after checking the user may ask."""
    return _open_breaker_modal(
        body, respond, deps, client, "request_reset", reset_request_modal, now
    )


def _open_breaker_modal(
    body: dict[str, Any],
    respond: Respond,
    deps: AppDeps,
    client: WebClient,
    action: str,
    build_modal: Any,
    now: datetime | None,
) -> bool:
    """Check that the clicker may do `action` on the card's workload, then open the modal
    `build_modal(card, channel=..., ts=...)`; True when it was opened, else the refusal or
    the error is told to the clicker alone."""
    now = now or utcnow()
    actor = body["user"]["id"]
    slug = body["actions"][0]["value"]
    try:
        refused = actions.may_act(
            deps.session_factory, slug, action, actor=actor, admins=deps.admins(client)
        )
        card = load_card(deps.session_factory, slug, now)
    except BadInput as error:
        _tell(respond, str(error))
        return False
    if refused is not None:
        _tell(respond, refused.message)
        return False
    container = body.get("container") or {}
    modal = build_modal(card, channel=container.get("channel_id"), ts=container.get("message_ts"))
    client.views_open(trigger_id=body["trigger_id"], view=modal)
    return True


def handle_reset_request_submission(
    ack: Ack,
    body: dict[str, Any],
    view: dict[str, Any],
    deps: AppDeps,
    client: WebClient | None,
    logger: Logger,
    *,
    now: datetime | None = None,
) -> Outcome | None:
    """Record the reset request with its reason; the card then offers Approve reset."""
    now = now or utcnow()
    metadata = _metadata(view)
    slug = str(metadata.get("slug") or "")
    reason = (
        view.get("state", {})
        .get("values", {})
        .get(REASON_BLOCK_ID, {})
        .get(REASON_ACTION_ID, {})
        .get("value")
    )
    try:
        outcome = actions.request_reset(
            deps.session_factory,
            slug,
            actor=body["user"]["id"],
            admins=deps.admins(client),
            now=now,
            reason=reason or "",
        )
    except BadInput as error:
        ack(response_action="errors", errors={REASON_BLOCK_ID: truncate(str(error), 300)})
        return None
    if outcome.result is Result.REFUSED:
        ack(response_action="errors", errors={REASON_BLOCK_ID: truncate(outcome.message, 300)})
        return outcome
    ack()
    answer_later(
        deps,
        lambda: _update_cards(deps, client, metadata, outcome.slug, now, logger),
        respond=None,
        logger=logger,
    )
    return outcome


def handle_raise_budget_submission(
    ack: Ack,
    body: dict[str, Any],
    view: dict[str, Any],
    deps: AppDeps,
    client: WebClient | None,
    logger: Logger,
    *,
    now: datetime | None = None,
) -> Outcome | None:
    """Validate the amount, raise the budget, re-arm the breaker, update the card."""
    now = now or utcnow()
    actor = body["user"]["id"]
    metadata = _metadata(view)
    slug = str(metadata.get("slug") or "")
    raw = (
        view.get("state", {})
        .get("values", {})
        .get(BUDGET_BLOCK_ID, {})
        .get(BUDGET_ACTION_ID, {})
        .get("value")
    )
    try:
        amount = parse_amount(raw)
        outcome = actions.raise_budget(
            deps.session_factory,
            slug,
            amount,
            actor=actor,
            admins=deps.admins(client),
            now=now,
        )
    except BadInput as error:
        _modal_error(ack, str(error))
        return None
    if outcome.result is Result.REFUSED:
        _modal_error(ack, outcome.message)
        return outcome
    ack()
    answer_later(
        deps,
        lambda: _update_cards(deps, client, metadata, outcome.slug, now, logger),
        respond=None,  # a modal submission has no response_url: failures are logged
        logger=logger,
    )
    return outcome


def _update_cards(
    deps: AppDeps,
    client: WebClient | None,
    metadata: dict[str, Any],
    slug: str,
    now: datetime,
    logger: Logger,
) -> None:
    """After a raise: redraw the card the modal was opened from, queue the other copies."""
    channel, ts = metadata.get("channel"), metadata.get("ts")
    if client is not None and channel and ts:
        message = breaker_message(load_card(deps.session_factory, slug, now))
        try:
            client.chat_update(channel=channel, ts=ts, **message.to_dict())
        except SlackApiError as error:  # the other copies are still queued below
            logger.warning("could not update the breaker card: %s", error.response.get("error"))
    refresh_breaker_copies(deps.session_factory, slug, now)


def parse_amount(raw: Any) -> Decimal:
    """The modal's number, as a positive Decimal; BadInput says what to type instead."""
    text = str(raw or "").strip().replace(",", "")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise BadInput(f"{raw!r} is not an amount; type a number like 6500.") from None
    if amount.is_finite() and abs(amount) < MAX_MONEY:
        amount = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    check_budget(amount)  # the one budget rule of Slack and the registry file
    return amount


# ---- Bolt listeners --------------------------------------------------------------------


def _decide_after_ack(
    verb: str,
    ack: Ack,
    body: dict[str, Any],
    respond: Respond,
    client: WebClient,
    context: BoltContext,
) -> None:
    deps = deps_from(context)
    ack_then_answer(
        ack,
        deps,
        lambda: handle_decision(verb, body, respond, deps, client),
        respond=respond,
        logger=log,
    )


def breaker_trip_action(
    ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient, context: BoltContext
) -> None:
    _decide_after_ack("trip", ack, body, respond, client, context)


def breaker_reset_action(
    ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient, context: BoltContext
) -> None:
    # Opened here, not on the answer pool: the click's trigger_id expires in 3 s.
    ack()
    open_reset_request(body, respond, deps_from(context), client)


def breaker_approve_reset_action(
    ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient, context: BoltContext
) -> None:
    _decide_after_ack("reset", ack, body, respond, client, context)


def breaker_reset_request_submission(
    ack: Ack,
    body: dict[str, Any],
    view: dict[str, Any],
    client: WebClient,
    context: BoltContext,
    logger: Logger,
) -> None:
    handle_reset_request_submission(ack, body, view, deps_from(context), client, logger)


def breaker_ignore_action(
    ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient, context: BoltContext
) -> None:
    _decide_after_ack("ignore", ack, body, respond, client, context)


def breaker_raise_budget_action(
    ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient, context: BoltContext
) -> None:
    # Checked and opened here, not on the answer pool: the click's trigger_id expires in 3 s.
    ack()
    open_raise_budget(body, respond, deps_from(context), client)


def breaker_raise_budget_submission(
    ack: Ack,
    body: dict[str, Any],
    view: dict[str, Any],
    client: WebClient,
    context: BoltContext,
    logger: Logger,
) -> None:
    handle_raise_budget_submission(ack, body, view, deps_from(context), client, logger)


def register(app: App) -> None:
    app.action(TRIP)(breaker_trip_action)
    app.action(RESET)(breaker_reset_action)
    app.action(APPROVE_RESET)(breaker_approve_reset_action)
    app.view(RESET_CALLBACK_ID)(breaker_reset_request_submission)
    app.action(IGNORE)(breaker_ignore_action)
    app.action(RAISE_BUDGET)(breaker_raise_budget_action)
    app.view(RAISE_BUDGET_CALLBACK_ID)(breaker_raise_budget_submission)


# ---- replies ---------------------------------------------------------------------------


def _show_new_card(respond: Respond, deps: AppDeps, slug: str, now: datetime) -> None:
    message = breaker_message(load_card(deps.session_factory, slug, now))
    respond(replace_original=True, **message.to_dict())
    refresh_breaker_copies(deps.session_factory, slug, now)


def _tell(respond: Respond, text: str) -> None:
    respond(text=escape_keeping_mentions(text), response_type="ephemeral", replace_original=False)


def _metadata(view: dict[str, Any]) -> dict[str, Any]:
    try:
        metadata = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return {}
    return metadata if isinstance(metadata, dict) else {}


def _modal_error(ack: Ack, text: str) -> None:
    ack(response_action="errors", errors={BUDGET_BLOCK_ID: truncate(text, MAX_ERROR_TEXT)})


__all__ = [
    "handle_decision",
    "handle_raise_budget_submission",
    "handle_reset_request_submission",
    "open_raise_budget",
    "open_reset_request",
    "parse_amount",
    "register",
]

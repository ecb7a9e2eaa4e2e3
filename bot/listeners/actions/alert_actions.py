"""The buttons on alert posts (Acknowledge, Snooze 7 days, Show cost) and on ownership
gaps (Claim, Assign…), plus the Assign modal's submission.

Each listener acks first, then calls plain functions tests can call with mocks. Acknowledge
and Snooze change the alert and its audit trail in one transaction, then redraw the clicked
post in place (`replace_original`) so everyone in the channel sees who handled it. Claim is
the ownership registry's own claim (`/llm-owner claim`); Assign opens a small modal with a
user picker and assigns through the same registry rules (owner, backup or admin only).

Registration: `bot.listeners.actions.alert_actions.register(app)`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from datetime import datetime
from logging import Logger
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from sqlalchemy.orm import Session, sessionmaker

from llmgov.bot.answers import ack_then_answer
from llmgov.bot.blocks.alerts import (
    ACK_ACTION_ID,
    ASSIGN_ACTION_ID,
    ASSIGN_CALLBACK_ID,
    ASSIGN_USER_BLOCK_ID,
    CLAIM_ACTION_ID,
    SHOW_COST_ACTION_ID,
    SNOOZE_ACTION_ID,
    SNOOZE_DAYS,
    alert_message,
    alert_view,
    assign_modal,
)
from llmgov.bot.blocks.common import Message, escape, escape_keeping_mentions, truncate
from llmgov.bot.listeners.actions.owner_claim import owner_claim_action
from llmgov.bot.listeners.deps import AppDeps, deps_from
from llmgov.governance import alerts as lifecycle
from llmgov.models.base import transaction, utcnow
from llmgov.models.errors import BadInput
from llmgov.models.governance import Alert
from llmgov.models.registry import Workload

MAX_ERROR_TEXT = 300


def _ephemeral(text: str) -> dict[str, Any]:
    return {"text": text, "response_type": "ephemeral", "replace_original": False}


class AlertRefused(BadInput):
    """The actor may not acknowledge or snooze this alert; the refusal is audited."""


def change_alert(
    session_factory: sessionmaker[Session],
    alert_id: int,
    actor: str,
    now: datetime,
    change: Callable[[Session, int, str, datetime], Alert],
    *,
    verb: str,
    admins: Collection[str],
) -> Message:
    """Apply `change` (acknowledge or snooze) in one transaction, if `actor` may (the rule
    is governance/permissions.py's `authorise_alert`); the redrawn post. A refusal is
    audited (committed) and raised as `AlertRefused`."""
    with transaction(session_factory) as session:
        reason = lifecycle.refusal(session, alert_id, actor, verb, admins)
        if reason is None:
            alert = change(session, alert_id, actor, now)
            workload = session.get(Workload, alert.workload_id) if alert.workload_id else None
            return alert_message(alert_view(alert, workload))
    raise AlertRefused(reason)


def _alert_id(body: dict[str, Any]) -> int:
    raw = (body.get("actions") or [{}])[0].get("value", "")
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise BadInput(f"this button carries no alert id ({raw!r}); it may be outdated") from None


def _handle_change(
    body: dict[str, Any],
    respond: Respond,
    context: BoltContext,
    logger: Logger,
    change: Callable[[Session, int, str, datetime], Alert],
    verb: str,
    client: WebClient | None = None,
    now: Callable[[], datetime] = utcnow,
) -> None:
    deps = deps_from(context)
    actor = body["user"]["id"]
    try:
        message = change_alert(
            deps.session_factory,
            _alert_id(body),
            actor,
            now(),
            change,
            verb=verb,
            admins=deps.admins(client),
        )
    except AlertRefused as error:
        respond(**_ephemeral(f"🚫 Not done: {escape_keeping_mentions(str(error))}."))
        logger.info("alert %s by %s refused", verb, actor)
        return
    except BadInput as error:
        respond(**_ephemeral(f"Could not {verb} this alert: {escape(str(error))}"))
        return
    respond(**message.for_respond(response_type="in_channel", replace_original=True))
    logger.info("alert %s by %s", verb, actor)


def handle_alert_ack(
    ack: Ack,
    body: dict[str, Any],
    respond: Respond,
    context: BoltContext,
    logger: Logger,
    client: WebClient | None = None,
) -> None:
    """Acknowledge: the alert stays open (and resolves on its own) but notifies no more.
    Only the people it is addressed to, their team and admins may (`authorise_alert`)."""
    ack_then_answer(
        ack,
        deps_from(context),
        lambda: _handle_change(
            body, respond, context, logger, lifecycle.acknowledge, "acknowledge", client
        ),
        respond=respond,
        logger=logger,
    )


def handle_alert_snooze(
    ack: Ack,
    body: dict[str, Any],
    respond: Respond,
    context: BoltContext,
    logger: Logger,
    client: WebClient | None = None,
) -> None:
    """Snooze 7 days: silent until then; re-notified then if the condition still holds."""

    def snooze(session: Session, alert_id: int, actor: str, now: datetime) -> Alert:
        return lifecycle.snooze(session, alert_id, actor, now, days=SNOOZE_DAYS)

    ack_then_answer(
        ack,
        deps_from(context),
        lambda: _handle_change(body, respond, context, logger, snooze, "snooze", client),
        respond=respond,
        logger=logger,
    )


def handle_alert_show_cost(
    ack: Ack,
    body: dict[str, Any],
    respond: Respond,
    client: WebClient,
    context: BoltContext,
    logger: Logger,
) -> None:
    """Show cost: what `/llm-cost <workload> 30d` answers, to the one who clicked."""
    deps = deps_from(context)
    ack_then_answer(
        ack,
        deps,
        lambda: _show_cost(deps, body, respond, client),
        respond=respond,
        logger=logger,
    )


def _show_cost(deps: AppDeps, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
    actor = body["user"]["id"]
    try:
        alert_id = _alert_id(body)
    except BadInput as error:
        respond(**_ephemeral(escape(str(error))))
        return
    with deps.session_factory() as session:
        alert = session.get(Alert, alert_id)
        workload = session.get(Workload, alert.workload_id) if alert and alert.workload_id else None
        slug = workload.slug if workload else None
    if slug is None:
        respond(**_ephemeral("This alert is not about one workload; try `/llm-cost all 30d`."))
        return
    text = f"{slug} 30d"
    from llmgov.bot.listeners.commands import SLASH_COMMANDS  # commands import blocks; keep it lazy

    command = SLASH_COMMANDS.get("/llm-cost")
    if command is None:
        respond(**_ephemeral(f"Run `/llm-cost {escape(text)}` for the numbers."))
        return
    reply = command.reply(deps, {"text": text, "user_id": actor, "command": "/llm-cost"}, client)
    if reply is not None:
        respond(**reply.message.for_respond(replace_original=False))


def handle_workload_claim(
    ack: Ack,
    body: dict[str, Any],
    respond: Respond,
    client: WebClient,
    context: BoltContext,
    logger: Logger,
) -> None:
    """Claim: the clicker becomes the owner, by the registry's own rules and audit."""
    owner_claim_action(ack, body, respond, client, context, logger)


def handle_workload_assign(
    ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext, logger: Logger
) -> None:
    """Assign…: open a modal to pick the new owner (the trigger expires in 3 s: open first)."""
    ack()
    slug = (body.get("actions") or [{}])[0].get("value", "")
    metadata = {"slug": slug, "response_url": body.get("response_url") or ""}
    client.views_open(trigger_id=body["trigger_id"], view=assign_modal(slug, metadata))


def handle_assign_submission(
    ack: Ack,
    body: dict[str, Any],
    view: dict[str, Any],
    client: WebClient,
    context: BoltContext,
    logger: Logger,
) -> None:
    """The Assign modal's submission: assign through the registry, answer in the channel."""
    from llmgov.bot.blocks.owner import owner_message  # the registry's own wording of a change
    from llmgov.commands import owner

    deps = deps_from(context)
    actor = body["user"]["id"]
    metadata = json.loads(view.get("private_metadata") or "{}")
    slug = metadata.get("slug", "")
    state = view.get("state", {}).get("values", {}).get(ASSIGN_USER_BLOCK_ID, {})
    chosen = next(iter(state.values()), {}).get("selected_user")
    if not chosen:
        ack(response_action="errors", errors={ASSIGN_USER_BLOCK_ID: "Pick the new owner."})
        return
    command = owner.Assign(slug, owner.PersonRef(chosen))
    answer = owner.execute(deps.session_factory, command, actor, deps.admins(client))
    if isinstance(answer, owner.ErrorAnswer | owner.RefusedAnswer):
        reason = getattr(answer, "message", None) or getattr(answer, "reason", "")
        ack(
            response_action="errors",
            errors={ASSIGN_USER_BLOCK_ID: truncate(str(reason), MAX_ERROR_TEXT)},
        )
        return
    ack()
    if metadata.get("response_url"):
        Respond(response_url=metadata["response_url"])(
            **owner_message(answer).for_respond(replace_original=False)
        )
    else:
        logger.info("assigned %s to %s by %s", slug, chosen, actor)


def register(app: App) -> None:
    app.action(ACK_ACTION_ID)(handle_alert_ack)
    app.action(SNOOZE_ACTION_ID)(handle_alert_snooze)
    app.action(SHOW_COST_ACTION_ID)(handle_alert_show_cost)
    app.action(CLAIM_ACTION_ID)(handle_workload_claim)
    app.action(ASSIGN_ACTION_ID)(handle_workload_assign)
    app.view(ASSIGN_CALLBACK_ID)(handle_assign_submission)


__all__ = [
    "change_alert",
    "handle_alert_ack",
    "handle_alert_show_cost",
    "handle_alert_snooze",
    "handle_assign_submission",
    "handle_workload_assign",
    "handle_workload_claim",
    "register",
]

"""The "Claim" button on ownership lists, workload details and the Home tab; the admins'
notice of every claim, and its "Confirm" button.

A claim gives the workload at once, but not its money: until a governance admin confirms
the claim, or for `CLAIM_WAITING_PERIOD` after it, the claimer may not change its budget or
act on its circuit breaker (`governance.permissions.unconfirmed_claim`). Every admin is
told of every claim by a direct message through the outbox, with a Confirm button.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta
from logging import Logger
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.models.blocks import ActionsBlock, ButtonElement, SectionBlock
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from llmgov.bot.answers import ack_then_answer
from llmgov.bot.blocks.common import escape_code, mention
from llmgov.bot.blocks.owner import owner_message
from llmgov.bot.listeners.deps import AppDeps, deps_from
from llmgov.bot.listeners.events.app_home import publish_home
from llmgov.commands import owner
from llmgov.governance import audit, outbox
from llmgov.governance.permissions import CLAIM_WAITING_PERIOD, CONFIRM_CLAIM
from llmgov.models.base import transaction, utcnow
from llmgov.models.registry import AuditEvent, Workload

CONFIRM_CLAIM_ACTION_ID = "owner_confirm_claim"
# a claim is announced once, right after it; older ones were announced when they happened
_NOTICE_WINDOW = timedelta(minutes=10)


def owner_claim_action(
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
        lambda: claim_and_answer(deps, body, respond, client),
        respond=respond,
        logger=logger,
    )


def claim_and_answer(
    deps: AppDeps, body: dict[str, Any], respond: Respond, client: WebClient
) -> None:
    actor = body["user"]["id"]
    slug = body["actions"][0]["value"]
    admins = deps.admins(client)
    answer = owner.execute(deps.session_factory, owner.Claim(slug), actor, admins)
    notify_admins_of_claim(deps.session_factory, slug, actor, admins)
    if (body.get("view") or {}).get("type") == "home":
        publish_home(deps, client, actor)  # the Home tab has no response_url: redraw it
        return
    respond(**owner_message(answer).for_respond(replace_original=False))


def notify_admins_of_claim(
    session_factory: sessionmaker[Session], slug: str, claimer: str, admins: Collection[str]
) -> int:
    """Queue a direct message to every admin about `claimer`'s claim of `slug`, if it was
    just applied (a refused claim tells nobody). Idempotent per claim and admin; returns how
    many notices were queued."""
    with transaction(session_factory) as session:
        event = session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.entity == "workload",
                AuditEvent.entity_key == slug,
                AuditEvent.action == "owner.claim",
                AuditEvent.outcome == "applied",
                AuditEvent.actor == claimer,
            )
            .order_by(AuditEvent.id.desc())
            .limit(1)
        ).first()
        if event is None or not _recent(event.at):
            return 0
        days = CLAIM_WAITING_PERIOD.days
        text = (
            f"{mention(claimer)} claimed `{escape_code(slug)}` and owns it now. Its budget "
            f"and circuit breaker stay out of their hands for {days} days unless you confirm."
        )
        payload = {
            "text": text,
            "blocks": [
                SectionBlock(text=text).to_dict(),
                ActionsBlock(
                    elements=[
                        ButtonElement(
                            text="Confirm the claim",
                            action_id=CONFIRM_CLAIM_ACTION_ID,
                            value=str(event.id),
                            style="primary",
                        )
                    ]
                ).to_dict(),
            ],
        }
        for admin in sorted(admins):
            outbox.enqueue(
                session,
                key=f"claim-notice:{event.id}:{admin}",
                method=outbox.POST,
                channel=admin,
                payload=payload,
            )
        return len(admins)


def _recent(at) -> bool:
    from datetime import UTC

    moment = at if at.tzinfo else at.replace(tzinfo=UTC)
    return utcnow() - moment < _NOTICE_WINDOW


def owner_confirm_claim_action(
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
        lambda: respond(
            text=confirm_claim(deps.session_factory, body, deps.admins(client)),
            response_type="ephemeral",
            replace_original=False,
        ),
        respond=respond,
        logger=logger,
    )


def confirm_claim(
    session_factory: sessionmaker[Session], body: dict[str, Any], admins: Collection[str]
) -> str:
    """An admin confirms a claim: the claimer gets the workload's budget and breaker now.
    Audited (`owner.confirm`); anyone else is refused, audited too."""
    actor = body["user"]["id"]
    raw = (body.get("actions") or [{}])[0].get("value", "")
    with transaction(session_factory) as session:
        event = session.get(AuditEvent, int(raw)) if str(raw).isdigit() else None
        if event is None or event.action != "owner.claim":
            return "⚠️ This button carries no claim; it may be outdated."
        slug = event.entity_key
        if actor not in admins:
            audit.record(
                session,
                actor=actor,
                action=CONFIRM_CLAIM,
                entity="workload",
                entity_key=slug,
                outcome="refused",
                reason="only a governance admin can confirm a claim",
            )
            return "🚫 Not done: only a governance admin can confirm a claim."
        workload = session.scalar(select(Workload).where(Workload.slug == slug))
        owner_id = workload.owner.slack_id if workload and workload.owner else None
        if owner_id != event.actor:
            return (
                f"⚠️ `{escape_code(slug)}` has changed hands since that claim; nothing to confirm."
            )
        audit.record(
            session,
            actor=actor,
            action=CONFIRM_CLAIM,
            entity="workload",
            entity_key=slug,
            after={"owner": owner_id, "claim": event.id},
        )
    return f"✅ Confirmed: {mention(owner_id)} now has the budget and breaker of `{escape_code(slug)}`."


__all__ = [
    "CONFIRM_CLAIM_ACTION_ID",
    "confirm_claim",
    "notify_admins_of_claim",
    "owner_claim_action",
    "owner_confirm_claim_action",
]

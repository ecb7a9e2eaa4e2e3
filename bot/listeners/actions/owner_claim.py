"""The "Claim" button on ownership lists, workload details and the Home tab."""

from __future__ import annotations

from logging import Logger
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient

from llmgov.bot.answers import ack_then_answer
from llmgov.bot.blocks.owner import owner_message
from llmgov.bot.listeners.deps import AppDeps, deps_from
from llmgov.bot.listeners.events.app_home import publish_home
from llmgov.commands import owner


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
    answer = owner.execute(deps.session_factory, owner.Claim(slug), actor, deps.admins(client))
    if (body.get("view") or {}).get("type") == "home":
        publish_home(deps, client, actor)  # the Home tab has no response_url: redraw it
        return
    respond(**owner_message(answer).for_respond(replace_original=False))

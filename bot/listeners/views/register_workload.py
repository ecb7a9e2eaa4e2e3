"""The register modal's submission: validate every field, create the workload, answer."""

from __future__ import annotations

import json
from logging import Logger
from typing import Any

from slack_bolt import Ack, BoltContext, Respond

from llmgov.bot.blocks.common import truncate
from llmgov.bot.blocks.owner import change_message, form_values
from llmgov.bot.listeners.deps import deps_from
from llmgov.commands import owner

MAX_ERROR_TEXT = 300


def register_workload_submission(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext, logger: Logger
) -> None:
    deps = deps_from(context)
    actor = body["user"]["id"]
    form = owner.RegistrationForm(**form_values(view))
    # Anyone may register, so the configured admins suffice (no Slack call before the ack).
    result = owner.register_workload(deps.session_factory, form, actor, deps.settings.admins)
    if isinstance(result, owner.RegistrationErrors):
        errors = {name: truncate(text, MAX_ERROR_TEXT) for name, text in result.errors.items()}
        ack(response_action="errors", errors=errors)
        return
    ack()
    metadata = json.loads(view.get("private_metadata") or "{}")
    if metadata.get("response_url"):
        Respond(response_url=metadata["response_url"])(**change_message(result).for_respond())
    else:
        logger.info("registered %s; no response_url to confirm it to %s", result.change.slug, actor)

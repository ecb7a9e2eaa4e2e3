"""The register modal's submission: validate every field, create the workload, answer.

Anyone may register a workload and name anyone its accountable owner; the person named
(when it is not the one registering) is told at once by a direct message through the
outbox, with who did it and how to hand it back, so nobody is made accountable unknowingly.
"""

from __future__ import annotations

import json
from logging import Logger
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from sqlalchemy.orm import Session, sessionmaker

from llmgov.bot.blocks.common import escape_code, mention, truncate
from llmgov.bot.blocks.owner import change_message, form_values
from llmgov.bot.listeners.deps import deps_from
from llmgov.commands import owner
from llmgov.governance import outbox
from llmgov.governance.people import SLACK_USER_ID
from llmgov.models.base import transaction

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
    tell_the_named_owner(deps.session_factory, result.change.slug, form.owner, actor)
    metadata = json.loads(view.get("private_metadata") or "{}")
    if metadata.get("response_url"):
        Respond(response_url=metadata["response_url"])(**change_message(result).for_respond())
    else:
        logger.info("registered %s; no response_url to confirm it to %s", result.change.slug, actor)


def tell_the_named_owner(
    session_factory: sessionmaker[Session], slug: str, named: str | None, actor: str
) -> bool:
    """Queue a direct message to `named` when someone else made them the owner of `slug`
    (idempotent per workload and person). True when one was queued."""
    if not named or named == actor or not SLACK_USER_ID.match(named):
        return False
    text = (
        f"{mention(actor)} registered `{escape_code(slug)}` with you as its accountable "
        "owner: you will get its alerts and the weekly digest. If it is not yours, hand it "
        f"on with `/llm-owner assign {escape_code(slug)} @someone` or ask a governance admin."
    )
    with transaction(session_factory) as session:
        outbox.enqueue(
            session,
            key=f"owner-named:{slug}:{named}",
            method=outbox.POST,
            channel=named,
            payload={"text": text},
        )
    return True

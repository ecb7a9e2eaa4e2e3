"""`/llm-owner`: ack at once, open the register modal first when asked, else answer."""

from __future__ import annotations

from logging import Logger
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.blocks.owner import owner_message, register_modal
from bot.listeners.commands.base import Reply
from bot.listeners.deps import AppDeps, deps_from
from commands import owner
from commands.parsing import ParseError

NEEDS_SLACK = (
    "`register` opens a form, which only Slack can show. From the command line, register "
    "workloads with `llmgov registry import FILE.yaml`."
)


def reply_llm_owner(
    deps: AppDeps, command: dict[str, Any], client: WebClient | None
) -> Reply | None:
    """The answer to `/llm-owner TEXT`; None when the register modal was opened instead."""
    actor = command["user_id"]
    try:
        parsed = owner.parse(command.get("text") or "")
    except ParseError as error:
        answer: owner.Answer = owner.ErrorAnswer(error.message, error.example)
    else:
        if isinstance(parsed, owner.Register):
            trigger_id = command.get("trigger_id")
            if client is None or not trigger_id:
                answer = owner.ErrorAnswer(NEEDS_SLACK, None)
            else:
                # The trigger_id expires 3 s after the command: open the form before anything
                # slow, and carry the response_url so the submission can answer here.
                metadata = {"response_url": command.get("response_url") or ""}
                try:
                    client.views_open(trigger_id=trigger_id, view=register_modal(actor, metadata))
                    return None
                except SlackApiError as error:
                    code = error.response.get("error") or "an error"
                    answer = owner.ErrorAnswer(
                        f"The register form could not open (Slack said {code}). "
                        "Run the command again; the form must open within 3 seconds.",
                        owner.EXAMPLES["register"],
                    )
        else:
            answer = owner.execute(deps.session_factory, parsed, actor, deps.admins(client))
    return Reply(owner_message(answer), answer.outcome)


def llm_owner_command(
    ack: Ack,
    command: dict[str, Any],
    respond: Respond,
    client: WebClient,
    context: BoltContext,
    logger: Logger,
) -> None:
    ack()
    reply = reply_llm_owner(deps_from(context), command, client)
    if reply is not None:
        respond(**reply.message.for_respond())

"""`/llm-owner`: ack at once, open the register modal first when asked, else answer."""

from __future__ import annotations

from logging import Logger
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from llmgov.bot.answers import ack_then_answer
from llmgov.bot.blocks.owner import owner_message, register_modal
from llmgov.bot.listeners.actions.owner_claim import notify_admins_of_claim
from llmgov.bot.listeners.commands.base import Reply, respond_with
from llmgov.bot.listeners.deps import AppDeps, deps_from
from llmgov.commands import owner
from llmgov.commands.parsing import ParseError

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
            admins = deps.admins(client)
            answer = owner.execute(deps.session_factory, parsed, actor, admins)
            if isinstance(parsed, owner.Claim):  # every admin is told of every claim
                notify_admins_of_claim(deps.session_factory, parsed.slug, actor, admins)
    return Reply(owner_message(answer), answer.outcome)


def llm_owner_command(
    ack: Ack,
    command: dict[str, Any],
    respond: Respond,
    client: WebClient,
    context: BoltContext,
    logger: Logger,
) -> None:
    deps = deps_from(context)
    ack_then_answer(
        ack,
        deps,
        lambda: respond_with(respond, reply_llm_owner(deps, command, client)),
        respond=respond,
        logger=logger,
        uses_trigger=opens_the_register_form(command),
    )


def opens_the_register_form(command: dict[str, Any]) -> bool:
    """`/llm-owner register`: the answer is a modal, opened with the command's trigger_id."""
    try:
        return isinstance(owner.parse(command.get("text") or ""), owner.Register)
    except ParseError:
        return False

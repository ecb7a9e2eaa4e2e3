"""What every slash command offers besides its Bolt listener: a `reply` function that
answers the command payload without Bolt, so `llmgov ask` runs the same code Slack does.

Every listener acknowledges at once and answers on the app's answer pool
(`bot.answers.ack_then_answer`); only opening a modal, which must happen within 3 seconds
of the command, is done in the listener's own thread."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from slack_bolt import Respond
from slack_sdk import WebClient

from llmgov.bot.blocks.common import Message
from llmgov.bot.listeners.deps import AppDeps

Outcome = Literal["ok", "error", "refused"]


@dataclass(frozen=True)
class Reply:
    message: Message
    outcome: Outcome = "ok"


# reply(deps, command payload, client or None) -> the reply, or None when a modal was opened
ReplyFunction = Callable[[AppDeps, dict[str, Any], WebClient | None], Reply | None]


@dataclass(frozen=True)
class SlashCommand:
    name: str  # "/llm-owner"
    listener: Callable[..., None]  # the Bolt listener: ack, then reply, then respond
    reply: ReplyFunction


def respond_with(respond: Respond, reply: Reply | None) -> None:
    """Send `reply` to the command's response_url (nothing when a modal was opened)."""
    if reply is not None:
        respond(**reply.message.for_respond())


__all__ = ["Outcome", "Reply", "ReplyFunction", "SlashCommand", "respond_with"]

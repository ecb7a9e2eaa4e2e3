"""Slash-command listeners. `SLASH_COMMANDS` maps each command to its listener and to the
reply function `llmgov ask` calls; `register(app)` wires them (and the buttons a command
module owns) into Bolt."""

from __future__ import annotations

from slack_bolt import App

from llmgov.bot.listeners.commands import llm_cost, llm_decide
from llmgov.bot.listeners.commands.base import Reply, SlashCommand
from llmgov.bot.listeners.commands.llm_owner import llm_owner_command, reply_llm_owner

SLASH_COMMANDS: dict[str, SlashCommand] = {
    "/llm-cost": llm_cost.SLASH_COMMAND,
    "/llm-decide": llm_decide.SLASH_COMMAND,
    "/llm-owner": SlashCommand("/llm-owner", llm_owner_command, reply_llm_owner),
}


def register(app: App) -> None:
    llm_cost.register(app)  # the command and its "open cost" button
    llm_decide.register(app)
    app.command("/llm-owner")(llm_owner_command)


__all__ = ["SLASH_COMMANDS", "Reply", "SlashCommand", "register"]

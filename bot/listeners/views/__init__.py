"""Modal submissions."""

from __future__ import annotations

from slack_bolt import App

from llmgov.bot.blocks.owner import REGISTER_CALLBACK_ID
from llmgov.bot.listeners.views import decide_modal
from llmgov.bot.listeners.views.register_workload import register_workload_submission


def register(app: App) -> None:
    app.view(REGISTER_CALLBACK_ID)(register_workload_submission)
    decide_modal.register(app)

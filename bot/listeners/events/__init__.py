"""Events API listeners: the Home tab (`app_home_opened`)."""

from __future__ import annotations

from slack_bolt import App

from llmgov.bot.listeners.events import app_home


def register(app: App) -> None:
    app_home.register(app)

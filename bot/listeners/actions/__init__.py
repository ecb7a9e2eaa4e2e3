"""Block actions (buttons), one module per surface; each module has `register(app)`."""

from __future__ import annotations

from slack_bolt import App

from llmgov.bot.blocks.owner import CLAIM_ACTION_ID
from llmgov.bot.listeners.actions import alert_actions, breaker_actions, decision_actions
from llmgov.bot.listeners.actions.owner_claim import (
    CONFIRM_CLAIM_ACTION_ID,
    owner_claim_action,
    owner_confirm_claim_action,
)


def register(app: App) -> None:
    app.action(CLAIM_ACTION_ID)(owner_claim_action)
    app.action(CONFIRM_CLAIM_ACTION_ID)(owner_confirm_claim_action)
    alert_actions.register(app)
    breaker_actions.register(app)
    decision_actions.register(app)

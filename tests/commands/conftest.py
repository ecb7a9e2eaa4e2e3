"""Fixtures for the command tests: the small known world of `world.py`, and the Slack app of
tests/slack with this work's listeners added (until bot/listeners registers them)."""

from __future__ import annotations

import pytest

from bot.app import build_app
from bot.listeners.actions import decision_actions
from bot.listeners.commands import llm_cost, llm_decide
from bot.listeners.views import decide_modal
from tests.commands.world import World, build_world
from tests.slack.conftest import deps, settings, slack_server  # noqa: F401 - fixtures


@pytest.fixture
def world(session) -> World:
    return build_world(session)


@pytest.fixture
def bolt_app(settings, session_factory):  # noqa: F811 - extends tests/slack's app
    app = build_app(settings, session_factory, token_verification_enabled=False)
    for module in (llm_cost, llm_decide, decision_actions, decide_modal):
        module.register(app)
    return app

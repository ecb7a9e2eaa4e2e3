"""Fixtures for the command tests: the small known world of `world.py`, and the Slack app
(with every listener registered) served as in tests/slack."""

from __future__ import annotations

import pytest

from tests.commands.world import World, build_world
from tests.slack.conftest import (  # noqa: F401 - fixtures
    bolt_app,
    deps,
    settings,
    slack_server,
)


@pytest.fixture
def world(session) -> World:
    return build_world(session)

"""Fixtures for the command tests: the small known world of `world.py`."""

from __future__ import annotations

import pytest

from tests.commands.world import World, build_world


@pytest.fixture
def world(session) -> World:
    return build_world(session)

"""Fixtures for the registry-as-code tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from llmgov.governance.registry_file import ImportPlan
from tests.registry.support import BASE_REGISTRY, import_text


@pytest.fixture
def base(session_factory) -> ImportPlan:
    """The database with BASE_REGISTRY imported."""
    return import_text(session_factory, BASE_REGISTRY)


@pytest.fixture
def write_file(tmp_path) -> Callable[[str, str], Path]:
    def write(text: str, name: str = "registry.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write

"""Bundled demo data for `llmgov demo` (a believable company, no Slack, no AWS)."""

from importlib.resources import files
from importlib.resources.abc import Traversable


def demo_file(name: str) -> Traversable:
    """A bundled demo file, e.g. demo_file("registry.yaml")."""
    return files(__name__) / name

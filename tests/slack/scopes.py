"""Which Slack Web API methods the code calls, found by reading the source (not by running it),
and the bot scopes they need according to the method catalogue in tests/fixtures."""

from __future__ import annotations

import ast
import inspect
import re
from functools import cache
from pathlib import Path

import yaml
from slack_sdk import WebClient

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "commands", "governance", "models", "collectors", "guardrails", "economics")
MANIFEST = ROOT / "manifest.yml"

# WebClient helpers that call several API methods.
COMPOSITE = {
    "files_upload_v2": {"files.getUploadURLExternal", "files.completeUploadExternal"},
}
# Methods the catalogue lets several scopes satisfy: the ones this app asks for.
# The outbox reads history to find an earlier copy of a message before resending it, in the
# governance channel (public or private) and in owners' DMs, so it needs all three.
HISTORY_SCOPES = ("channels:history", "groups:history", "im:history")
SCOPE_CHOICE = {
    "conversations.open": ("im:write",),  # DMs to owners (weekly digest, alerts)
    "conversations.history": HISTORY_SCOPES,
    "conversations.replies": HISTORY_SCOPES,
    "conversations.info": ("channels:read",),
    "conversations.members": ("channels:read",),
    "conversations.list": ("channels:read",),
}
# Scopes that come from features rather than Web API calls.
FEATURE_SCOPES = {"commands"}  # the slash commands


@cache
def webclient_methods() -> dict[str, set[str]]:
    """Python method name of WebClient → the API methods it calls."""
    mapping: dict[str, set[str]] = {}
    for name, function in inspect.getmembers(WebClient, inspect.isfunction):
        if name.startswith("_"):
            continue
        called = set(re.findall(r'self\.api_call\(\s*"([a-zA-Z.]+)"', inspect.getsource(function)))
        if called:
            mapping[name] = called
    mapping.update(COMPOSITE)
    return mapping


def _source_files() -> list[Path]:
    files: list[Path] = []
    for package in PACKAGES:
        files += sorted((ROOT / package).rglob("*.py"))
    return files


def calls_in_source() -> dict[str, set[str]]:
    """API method → the files that call it (attribute calls like `client.chat_postMessage(`,
    and `api_call("x.y")` with a literal method name)."""
    methods = webclient_methods()
    found: dict[str, set[str]] = {}
    for path in _source_files():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            # a call `client.chat_postMessage(...)`, or a reference `fn = client.x_y` called later
            if isinstance(node, ast.Attribute) and node.attr in methods:
                api = set(methods[node.attr])
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "api_call"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                api = {str(node.args[0].value)}
            else:
                continue
            for method in api:
                found.setdefault(method, set()).add(str(path.relative_to(ROOT)))
    return found


def required_scopes(catalogue: dict[str, dict]) -> tuple[set[str], list[str]]:
    """(the bot scopes the code needs, problems such as a method missing from the catalogue)."""
    scopes, problems = set(FEATURE_SCOPES), []
    for method, files in sorted(calls_in_source().items()):
        spec = catalogue.get(method)
        if spec is None:
            problems.append(f"{method} (called in {sorted(files)}) is not in the catalogue")
            continue
        options = spec.get("bot_scopes") or []
        if len(options) == 1:
            scopes.add(options[0])
        elif len(options) > 1:
            choice = SCOPE_CHOICE.get(method, ())
            if not choice or not set(choice) <= set(options):
                problems.append(f"{method}: choose from {options} in SCOPE_CHOICE")
            else:
                scopes.update(choice)
    return scopes, problems


def manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


def manifest_scopes() -> set[str]:
    return set(manifest()["oauth_config"]["scopes"]["bot"])

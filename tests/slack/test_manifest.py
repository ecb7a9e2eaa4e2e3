"""manifest.yml declares what the code needs: the commands, interactivity, the Home tab, its
event, and exactly the bot scopes of the Web API methods the code calls."""

from __future__ import annotations

from llmgov.bot.listeners.commands import SLASH_COMMANDS
from llmgov.bot.server import EVENTS_PATH
from tests.slack.scopes import calls_in_source, manifest, manifest_scopes, required_scopes
from tests.support.slack_mock import load_catalogue


def test_bot_scopes_are_exactly_what_the_code_uses():
    needed, problems = required_scopes(load_catalogue())
    assert problems == []
    assert manifest_scopes() == needed, (
        f"add to manifest.yml: {sorted(needed - manifest_scopes())}; "
        f"remove: {sorted(manifest_scopes() - needed)}"
    )


def test_the_scan_sees_our_own_calls():
    calls = calls_in_source()
    assert "bot/listeners/commands/llm_owner.py" in calls["views.open"]
    assert "bot/listeners/events/app_home.py" in calls["views.publish"]
    assert "bot/listeners/deps.py" in calls["usergroups.users.list"]


def test_slash_commands_interactivity_home_and_events():
    data = manifest()
    commands = {c["command"]: c for c in data["features"]["slash_commands"]}
    assert set(commands) == {"/llm-cost", "/llm-decide", "/llm-owner"}
    assert set(SLASH_COMMANDS) <= set(commands)
    for command in commands.values():
        assert command["url"].endswith(EVENTS_PATH)
        assert command["should_escape"] is True  # mentions arrive as <@U123|name>
        assert len(command["description"]) <= 100
    settings = data["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["request_url"].endswith(EVENTS_PATH)
    assert settings["event_subscriptions"]["request_url"].endswith(EVENTS_PATH)
    assert settings["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    assert data["features"]["app_home"]["home_tab_enabled"] is True

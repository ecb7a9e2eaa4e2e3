"""`app_home_opened`: publish the opener's Home tab (their workloads' spend this month and,
for governance admins, the ownership-gap review's headline and top gaps)."""

from __future__ import annotations

from logging import Logger
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient

from llmgov.bot.answers import answer_later
from llmgov.bot.blocks.home import home_tab
from llmgov.bot.listeners.deps import AppDeps, deps_from
from llmgov.commands import cost as cost_commands
from llmgov.commands.home import build_home


def publish_home(deps: AppDeps, client: WebClient, user_id: str) -> None:
    """Build and publish the Home tab of `user_id` (also after a button changes it)."""
    admins = deps.admins(client)
    with deps.session_factory() as session:
        model = build_home(session, user_id, admins=admins, today=cost_commands.today_utc())
    client.views_publish(user_id=user_id, view=home_tab(model))


def app_home_opened(
    event: dict[str, Any], client: WebClient, context: BoltContext, logger: Logger
) -> None:
    if event.get("tab") != "home":
        return  # the Messages tab: nothing to publish
    # Bolt acked the event already; build the tab on the answer pool, not a listener thread.
    deps = deps_from(context)
    answer_later(
        deps, lambda: publish_home(deps, client, event["user"]), respond=None, logger=logger
    )


def register(app: App) -> None:
    app.event("app_home_opened")(app_home_opened)


__all__ = ["app_home_opened", "publish_home", "register"]

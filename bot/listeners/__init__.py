"""Listener registration, in the style of slack-samples/bolt-python-starter-template:
each kind has `register(app)`, and the listeners are plain typed functions that tests call
directly with mocks. `register_listeners` also hands every request the app's dependencies.
"""

from __future__ import annotations

from collections.abc import Callable

from slack_bolt import App, BoltContext

from llmgov.bot.listeners import actions, commands, events, views
from llmgov.bot.listeners.deps import CONTEXT_KEY, AppDeps


def register_listeners(app: App, deps: AppDeps) -> None:
    def attach_deps(context: BoltContext, next: Callable[[], None]) -> None:
        context[CONTEXT_KEY] = deps
        next()

    app.middleware(attach_deps)
    actions.register(app)
    commands.register(app)
    events.register(app)
    views.register(app)


__all__ = ["register_listeners"]

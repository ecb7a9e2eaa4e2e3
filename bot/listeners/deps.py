"""What listeners need besides Bolt's own arguments, handed to them through the context.

`register_listeners` installs a middleware that puts one `AppDeps` into every request's
context under `llmgov`; a listener reads it with `deps_from(context)`. Tests build an
`AppDeps` and pass `{"llmgov": deps}` as the context, without an App.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session, sessionmaker

from llmgov.bot.settings import Settings

if TYPE_CHECKING:
    from llmgov.bot.answers import AnswerPool
    from llmgov.bot.chart_worker import ChartWorker

log = logging.getLogger(__name__)

CONTEXT_KEY = "llmgov"
ADMIN_GROUP_TTL_SECONDS = 300.0


@dataclass
class AdminDirectory:
    """Governance admins: the user ids in LLMGOV_ADMINS, plus the members of any user group
    (S...) named there, read with `usergroups.users.list` and cached for a few minutes.

    A group that cannot be read adds nobody (fail closed) and is retried on the next request.
    """

    configured: frozenset[str]
    ttl_seconds: float = ADMIN_GROUP_TTL_SECONDS
    clock: Callable[[], float] = time.monotonic
    _cache: dict[str, tuple[float, frozenset[str]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def users(self) -> frozenset[str]:
        return frozenset(a for a in self.configured if not a.startswith("S"))

    @property
    def groups(self) -> frozenset[str]:
        return frozenset(a for a in self.configured if a.startswith("S"))

    def resolve(self, client: WebClient | None) -> frozenset[str]:
        admins = set(self.users)
        for group in sorted(self.groups):
            admins |= self._members(group, client)
        return frozenset(admins)

    def _members(self, group: str, client: WebClient | None) -> frozenset[str]:
        now = self.clock()
        with self._lock:
            cached = self._cache.get(group)
        if cached and now - cached[0] < self.ttl_seconds:
            return cached[1]
        if client is None:
            log.warning("admin group %s cannot be expanded without Slack", group)
            return frozenset()
        try:
            members = frozenset(client.usergroups_users_list(usergroup=group)["users"] or [])
        except SlackApiError as error:
            log.warning("could not read admin group %s: %s", group, error.response.get("error"))
            return frozenset()
        with self._lock:
            self._cache[group] = (now, members)
        return members


@dataclass
class AppDeps:
    settings: Settings
    session_factory: sessionmaker[Session]
    admin_directory: AdminDirectory
    # Where listeners send their answers after the ack (bot/answers.py); build_app creates
    # it. None: answer in the listener's own thread (`llmgov ask`, listener tests).
    answers: AnswerPool | None = None
    # The process that draws charts (bot/chart_worker.py); `llmgov serve` starts one.
    # None: draw in the answering thread.
    charts: ChartWorker | None = None

    @classmethod
    def build(
        cls,
        settings: Settings,
        session_factory: sessionmaker[Session],
        answers: AnswerPool | None = None,
        charts: ChartWorker | None = None,
    ) -> AppDeps:
        return cls(settings, session_factory, AdminDirectory(settings.admins), answers, charts)

    def admins(self, client: WebClient | None) -> frozenset[str]:
        return self.admin_directory.resolve(client)


def deps_from(context: Mapping[str, Any]) -> AppDeps:
    deps = context.get(CONTEXT_KEY)
    if not isinstance(deps, AppDeps):
        raise RuntimeError("AppDeps missing from the context: use register_listeners(app, deps)")
    return deps


__all__ = ["CONTEXT_KEY", "AdminDirectory", "AppDeps", "deps_from"]

"""The daily owner refresh, Slack side: `users.info` for people with a Slack id (Tier 4),
`users.lookupByEmail` for people known only by email (Tier 3), paced; what each answer
changes is decided in governance/owners.py. One short transaction per person, so a run cut
short keeps what it did and the rest is picked up next time.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session, sessionmaker

from llmgov.bot import metrics
from llmgov.bot.outbox import without_sdk_retries
from llmgov.bot.pacing import AnchoredClock, Clock, Pacer, SystemClock
from llmgov.bot.slack_errors import RateLimited, classify
from llmgov.governance import owners
from llmgov.models.base import transaction

log = logging.getLogger("llmgov.owner_refresh")

NOT_FOUND = {"users.info": "user_not_found", "users.lookupByEmail": "users_not_found"}
MAX_RATE_LIMIT_WAITS = 3  # per person; then leave them for the next run


@dataclass
class RefreshReport:
    outcomes: Counter[str] = field(default_factory=Counter)  # deactivated, resolved, missed, ...
    errors: list[str] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    left: int = 0  # due but not reached (time budget)

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcomes": dict(sorted(self.outcomes.items())),
            "errors": self.errors,
            "calls": dict(sorted(self.calls.items())),
            "left": self.left,
        }


def _ask_slack(
    client: Any, pacer: Pacer, method: str, argument: str, report: RefreshReport
) -> dict[str, Any] | None:
    """The Slack user, or None when Slack says there is none. Waits out 429s (a few times)."""
    for _ in range(MAX_RATE_LIMIT_WAITS + 1):
        pacer.acquire(method)
        report.calls[method] += 1
        try:
            if method == "users.info":
                return client.users_info(user=argument)["user"]
            return client.users_lookupByEmail(email=argument)["user"]
        except SlackApiError as error:
            if error.response.get("error") == NOT_FOUND[method]:
                return None
            failure = classify(method, error)
        except Exception as error:  # timeouts, connection errors
            failure = classify(method, error)
        if not isinstance(failure, RateLimited):
            raise failure
        pacer.penalise(method, None, failure.retry_after)
    raise failure


def refresh_owners(
    session_factory: sessionmaker[Session],
    client: Any,
    now: datetime | None = None,
    *,
    clock: Clock | None = None,
    pacer: Pacer | None = None,
    max_seconds: float | None = None,
    every: timedelta = owners.REFRESH_EVERY,
    miss_retry: timedelta = owners.MISS_RETRY,
) -> RefreshReport:
    """Refresh every person due a check; returns what changed."""
    base = clock or SystemClock()
    clock = AnchoredClock(now, base) if now is not None else base
    pacer = pacer or Pacer(base)
    client = without_sdk_retries(client)
    report = RefreshReport()
    started = clock.monotonic()
    with session_factory() as session:
        targets = owners.people_to_refresh(session, clock.now(), every=every, miss_retry=miss_retry)
    for index, target in enumerate(targets):
        if max_seconds is not None and clock.monotonic() - started >= max_seconds:
            report.left = len(targets) - index
            break
        method = "users.info" if target.slack_id else "users.lookupByEmail"
        argument = target.slack_id or target.email or ""
        try:
            user = _ask_slack(client, pacer, method, argument, report)
        except Exception as error:  # leave this person for the next run, carry on
            report.errors.append(f"{argument}: {error}")
            metrics.inc("llmgov_owner_refresh_total", {"outcome": "error"})
            continue
        with transaction(session_factory) as session:
            if target.slack_id:
                outcome = owners.apply_user_info(session, target.person_id, user, clock.now())
            else:
                outcome = owners.apply_lookup(session, target.person_id, user, clock.now())
        report.outcomes[outcome] += 1
        metrics.inc("llmgov_owner_refresh_total", {"outcome": outcome})
        if outcome == "deactivated":
            log.info("owner %s is no longer active in Slack", argument)
    return report

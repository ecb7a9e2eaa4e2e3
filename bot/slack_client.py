"""The one Slack Web API client the bot shares, and the choke point every call goes through.

Like Sentry's `SlackSdkClient`, `RecordingWebClient` overrides `api_call` (every WebClient
method ends there) to log each call (method, outcome, duration; never arguments, which may
hold user text, nor the token) and to count calls per method and outcome: in the client's
own `stats`, and in the process-wide `bot.metrics` registry that `/metrics` serves.
The base URL comes from `SLACK_API_URL`, so tests and emulators can stand in for Slack.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.web import SlackResponse

from llmgov.bot import metrics
from llmgov.bot.settings import Settings

log = logging.getLogger(__name__)

# A 429 makes the calling thread sleep Retry-After seconds; two retries bound that wait.
RATE_LIMIT_RETRIES = 2
TIMEOUT_SECONDS = 15


@dataclass
class SlackCallStats:
    """Thread-safe counts of Web API calls by (method, outcome), and time spent per method."""

    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    seconds: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, method: str, outcome: str, seconds: float) -> None:
        with self._lock:
            self.calls[(method, outcome)] += 1
            self.seconds[method] += seconds

    def snapshot(self) -> dict[str, dict[str, int]]:
        """{method: {outcome: count}}, e.g. {"views.open": {"ok": 3, "ratelimited": 1}}."""
        with self._lock:
            result: dict[str, dict[str, int]] = {}
            for (method, outcome), count in sorted(self.calls.items()):
                result.setdefault(method, {})[outcome] = count
            return result

    def total(self, method: str | None = None) -> int:
        with self._lock:
            return sum(n for (m, _), n in self.calls.items() if method in (None, m))


class RecordingWebClient(WebClient):
    """A WebClient that logs and counts every Web API call it makes."""

    def __init__(self, *args: Any, stats: SlackCallStats | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stats = stats if stats is not None else SlackCallStats()

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:  # type: ignore[override]
        started = time.monotonic()
        outcome = "exception"
        try:
            response = super().api_call(api_method, **kwargs)
            outcome = "ok"
            return response
        except SlackApiError as error:
            outcome = str(error.response.get("error") or f"http_{error.response.status_code}")
            raise
        finally:
            elapsed = time.monotonic() - started
            self.stats.record(api_method, outcome, elapsed)
            metrics.record_slack_call(api_method, outcome)  # llmgov_slack_calls_total
            log.info(
                "slack.api_call method=%s outcome=%s ms=%.0f", api_method, outcome, elapsed * 1000
            )


def make_client(settings: Settings, stats: SlackCallStats | None = None) -> RecordingWebClient:
    """The shared client: bot token, SLACK_API_URL, rate-limit retries, recording."""
    client = RecordingWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=TIMEOUT_SECONDS,
        stats=stats,
    )
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES))
    return client


__all__ = ["RecordingWebClient", "SlackCallStats", "make_client"]

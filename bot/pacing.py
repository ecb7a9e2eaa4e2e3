"""Clocks and pacing for calls to the Slack Web API, within Slack's published rate tiers.

Slack limits each Web API method per workspace per app by tier (Tier 2 ≈ 20/min, Tier 3 ≈
50/min, Tier 4 ≈ 100/min) and `chat.postMessage` specially: about one message per second per
channel, plus a workspace-wide ceiling of "several hundred messages per minute" (we model 300).
A `Pacer` holds one token bucket per (method, channel) key and per method, so a bulk sender
stays under those limits instead of learning them from 429s; a 429 that still arrives
penalises the key for its Retry-After.

Everything takes an injectable `Clock`, so tests and benchmarks run on virtual time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

# Calls per minute for Slack's tiers (the documented floor: "Tier 3: 50+ per minute").
TIER_PER_MINUTE = {"t1": 1, "t2": 20, "t3": 50, "t4": 100}

# The tier of each method the bot calls (slack-ruby/slack-api-ref; chat.postMessage is special).
METHOD_TIERS = {
    "chat.update": "t3",
    "chat.postEphemeral": "t4",
    "conversations.open": "t3",
    "conversations.history": "t3",
    "conversations.replies": "t3",
    "conversations.join": "t3",
    "users.info": "t4",
    "users.lookupByEmail": "t3",
    "files.getUploadURLExternal": "t4",
    "files.completeUploadExternal": "t4",
    "files.info": "t4",
}

POST_METHOD = "chat.postMessage"
# Spacing is padded by this factor so clock jitter never lands a call exactly on the limit.
SAFETY = 1.02


class Clock(Protocol):
    """Wall time for the database, monotonic time and sleep for pacing."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class AnchoredClock:
    """`start` as wall time, advancing with another clock's monotonic time (for `now=` args)."""

    def __init__(self, start: datetime, base: Clock) -> None:
        self._start = start
        self._base = base
        self._origin = base.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._base.monotonic() - self._origin)

    def monotonic(self) -> float:
        return self._base.monotonic()

    def sleep(self, seconds: float) -> None:
        self._base.sleep(seconds)


@dataclass
class SlackLimits:
    """The pacing the bot keeps; the defaults are what Slack documents."""

    post_per_channel_per_second: float = 1.0
    post_workspace_per_minute: float = 300.0
    tier_per_minute: dict[str, float] = field(default_factory=lambda: dict(TIER_PER_MINUTE))

    @classmethod
    def unlimited(cls) -> SlackLimits:
        """No pacing at all (tests that are not about pacing)."""
        return cls(
            post_per_channel_per_second=0.0,
            post_workspace_per_minute=0.0,
            tier_per_minute={tier: 0.0 for tier in TIER_PER_MINUTE},
        )

    def intervals(self, method: str, channel: str | None) -> list[tuple[tuple[str, str], float]]:
        """The (bucket key, seconds between calls) pairs a call to `method` must respect."""
        pairs: list[tuple[tuple[str, str], float]] = []
        if method == POST_METHOD:
            if channel and self.post_per_channel_per_second > 0:
                pairs.append(((method, channel), SAFETY / self.post_per_channel_per_second))
            if self.post_workspace_per_minute > 0:
                pairs.append(((method, "*"), SAFETY * 60.0 / self.post_workspace_per_minute))
            return pairs
        tier = METHOD_TIERS.get(method)
        rate = self.tier_per_minute.get(tier, 0.0) if tier else 0.0
        if rate > 0:
            pairs.append(((method, "*"), SAFETY * 60.0 / rate))
        return pairs


class Pacer:
    """Token buckets (capacity one: evenly spaced calls) keyed by method and channel."""

    def __init__(self, clock: Clock | None = None, limits: SlackLimits | None = None) -> None:
        self.clock = clock or SystemClock()
        self.limits = limits or SlackLimits()
        self._next_free: dict[tuple[str, str], float] = {}
        self._penalties: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def _blocked_until(self, method: str, channel: str | None, now: float) -> float:
        buckets = self.limits.intervals(method, channel)
        until = max([now, *(self._next_free.get(key, now) for key, _ in buckets)])
        for key in ((method, "*"), (method, channel or "*")):
            until = max(until, self._penalties.get(key, now))
        return until

    def ready_in(self, method: str, channel: str | None = None) -> float:
        """Seconds until a call to `method` (on `channel`) may be made; 0 when it may now."""
        now = self.clock.monotonic()
        with self._lock:
            return self._blocked_until(method, channel, now) - now

    def acquire(self, method: str, channel: str | None = None) -> float:
        """Wait (on the clock) until the call is allowed, then take its slot. Returns the wait."""
        waited = 0.0
        while (wait := self.ready_in(method, channel)) > 0:
            self.clock.sleep(wait)
            waited += wait
        now = self.clock.monotonic()
        with self._lock:
            for key, interval in self.limits.intervals(method, channel):
                self._next_free[key] = max(self._next_free.get(key, now), now) + interval
        return waited

    def penalise(self, method: str, channel: str | None, seconds: float) -> None:
        """Slack answered 429: hold this call back for `seconds`.

        A posting limit is per channel, so only that channel waits; any other method's limit
        is per workspace, so every call to it waits.
        """
        key = (method, channel) if method == POST_METHOD and channel else (method, "*")
        until = self.clock.monotonic() + seconds
        with self._lock:
            self._penalties[key] = max(self._penalties.get(key, until), until)

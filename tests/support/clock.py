"""A virtual clock for tests and benchmarks: `sleep` advances time at once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class FakeClock:
    """Virtual time: `sleep` advances the clock instantly. Thread-safe, for tests/benchmarks."""

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        self._elapsed = 0.0
        self._lock = threading.Lock()
        self.slept = 0.0

    def now(self) -> datetime:
        with self._lock:
            return self._start + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        with self._lock:
            return self._elapsed

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            with self._lock:
                self._elapsed += seconds
                self.slept += seconds

    advance = sleep

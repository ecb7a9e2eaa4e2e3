"""Early warning on per-minute usage: retry storms and runaways within minutes, not hours.

Inputs are `[workloads x minutes]` arrays of the last few minutes (`MinuteArrays`) and each
workload's expected per-minute rates at this time of day (`MinuteBaseline`, from the same
hour on previous days: `baseline_from_hours`). Each detector judges the mean of the last
`window_minutes` minutes, so one noisy minute neither raises nor ends an alert, and returns
a `Detection` (see `economics.detectors`).

An alert that is already open (`ongoing`) is kept while a weaker condition holds (half the
excess over the baseline, over the last `hold_minutes`): a storm that dips for a minute is
one alert, not a resolve and a repost. Every default in `MinuteThresholds` comes from `benchmarks/backtest_minutes.py`
(injected storms and runaways in a week of noisy, seasonal minute traffic).

- `minute_retry_storm`: attempts (invocations + throttles) per minute at least
  `storm_ratio` x the baseline and `storm_min_excess` above it, with the share of attempts
  that errored or were throttled at least `storm_error_share` and twice its baseline.
- `runaway`: invocations or tokens per minute (without the failures of a storm) at least
  `runaway_ratio` x the baseline and above it by `runaway_min_invocations` /
  `runaway_min_tokens`; or cost per minute at least
  `burn_ratio` x the baseline that would use up what is left of the month's budget within
  `burn_hours`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import NDArray

from llmgov.economics._numeric import BoolArray, FloatArray, TimeArray
from llmgov.economics._numeric import ratio as ratio_of
from llmgov.economics.detectors import Detection, _flagged

MINUTES_PER_DAY = 1440.0


@dataclass(frozen=True)
class MinuteArrays:
    """Per-minute sums, `(W, T)` each, over the minutes `minutes` (`(T,)` datetime64[m])."""

    minutes: TimeArray
    invocations: FloatArray
    tokens: FloatArray  # input + output (+ cache) tokens
    errors: FloatArray  # client + server errors
    throttles: FloatArray
    cost: FloatArray  # token-based estimated cost

    @property
    def shape(self) -> tuple[int, int]:
        return self.invocations.shape

    def upto(self, end: int) -> MinuteArrays:
        """The minutes before column `end` (what was published by then)."""
        return MinuteArrays(
            self.minutes[:end],
            *(getattr(self, f.name)[:, :end] for f in fields(self) if f.name != "minutes"),
        )


@dataclass(frozen=True)
class MinuteBaseline:
    """Expected per-minute rates at this time of day, `(W,)` each."""

    invocations: FloatArray
    tokens: FloatArray
    errors: FloatArray
    throttles: FloatArray
    cost: FloatArray

    @property
    def attempts(self) -> FloatArray:
        return self.invocations + self.throttles

    @property
    def failure_share(self) -> FloatArray:
        return ratio_of(self.errors + self.throttles, self.attempts)


def baseline_from_hours(
    invocations: np.ndarray,
    tokens: np.ndarray,
    errors: np.ndarray,
    throttles: np.ndarray,
    cost: np.ndarray,
) -> MinuteBaseline:
    """Per-minute rates from hourly sums `(W, K)` of the same hour on K previous days:
    the median over the days (NaN: no data that day, ignored; none at all: 0), / 60."""

    def rate(values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        if values.ndim != 2 or values.shape[1] == 0:
            return np.zeros(values.shape[0] if values.ndim else 0)
        known = ~np.isnan(values)
        filled = np.where(known, values, np.inf)
        ordered = np.sort(filled, axis=1)
        count = known.sum(axis=1)
        low = np.take_along_axis(ordered, np.maximum((count - 1) // 2, 0)[:, None], 1)[:, 0]
        high = np.take_along_axis(ordered, np.maximum(count // 2, 0)[:, None], 1)[:, 0]
        middle = np.where(count > 0, (low + high) / 2, 0.0)
        return middle / 60.0

    return MinuteBaseline(
        rate(invocations), rate(tokens), rate(errors), rate(throttles), rate(cost)
    )


@dataclass(frozen=True)
class MinuteThresholds:
    """Defaults from `benchmarks/backtest_minutes.py` (precision and recall ≥ 0.9)."""

    window_minutes: int = 3
    storm_ratio: float = 3.0
    storm_error_share: float = 0.25
    storm_min_excess: float = 20.0  # attempts per minute above the baseline
    runaway_ratio: float = 5.0
    runaway_min_invocations: float = 20.0  # per minute above the baseline
    runaway_min_tokens: float = 50_000.0  # per minute above the baseline
    burn_hours: float = 24.0
    burn_ratio: float = 2.0
    hold: float = 0.5  # an open alert is kept while this share of the excess remains
    hold_minutes: int = 10  # ... over this many minutes (a quiet minute does not end it)
    horizon_minutes: float = MINUTES_PER_DAY  # money at stake: this long at the excess rate


def _mean_window(values: FloatArray, window: int) -> FloatArray:
    if values.shape[1] == 0:
        return np.zeros(values.shape[0])
    mean: FloatArray = values[:, -window:].mean(axis=1)
    return mean


def _judged(values: FloatArray, window: int, ongoing: BoolArray, hold_minutes: int) -> FloatArray:
    """The mean of the last `window` minutes; of the last `hold_minutes` for open alerts."""
    return np.where(
        ongoing, _mean_window(values, max(hold_minutes, window)), _mean_window(values, window)
    )


def _eased(threshold: float, ongoing: BoolArray, hold: float, base: float = 0.0) -> FloatArray:
    """`threshold` per row, eased for ongoing alerts: `base + hold x (threshold - base)`."""
    eased = base + hold * (threshold - base)
    return np.where(ongoing, eased, threshold)


def _trailing_run(condition: BoolArray) -> NDArray[np.int64]:
    """How many trailing minutes (columns) of each row satisfy `condition`."""
    if condition.shape[1] == 0:
        return np.zeros(condition.shape[0], dtype=np.int64)
    run: NDArray[np.int64] = np.cumprod(condition[:, ::-1], axis=1).sum(axis=1)
    return run


def _since(minutes: TimeArray, run: NDArray[np.int64], window: int) -> TimeArray:
    """The first minute of the condition: at least the window judged."""
    back = np.maximum(run, min(window, minutes.size))
    first: TimeArray = minutes[-1] - np.maximum(back - 1, 0).astype("timedelta64[m]")
    return first


def minute_retry_storm(
    arrays: MinuteArrays,
    baseline: MinuteBaseline,
    thresholds: MinuteThresholds = MinuteThresholds(),
    ongoing: np.ndarray | None = None,
) -> Detection:
    """Retry storms in the last `window_minutes` (evidence per minute; money: a day of the
    excess cost at the current rate)."""
    n, t = arrays.shape
    if t == 0:
        return Detection.empty("minute_retry_storm")
    window = min(thresholds.window_minutes, t)
    ongoing = np.zeros(n, dtype=bool) if ongoing is None else np.asarray(ongoing, dtype=bool)
    attempts_per_minute = arrays.invocations + arrays.throttles
    failures_per_minute = arrays.errors + arrays.throttles
    attempts = _judged(attempts_per_minute, window, ongoing, thresholds.hold_minutes)
    failures = _judged(failures_per_minute, window, ongoing, thresholds.hold_minutes)
    share = ratio_of(failures, attempts)
    base = baseline.attempts
    base_share = baseline.failure_share
    surge = _eased(thresholds.storm_ratio, ongoing, thresholds.hold, 1.0)
    excess = _eased(thresholds.storm_min_excess, ongoing, thresholds.hold)
    share_limit = _eased(thresholds.storm_error_share, ongoing, thresholds.hold)
    storm = (
        (attempts >= surge * np.maximum(base, 1.0))
        & (attempts - base >= excess)
        & (share >= share_limit)
        & (share >= 2 * base_share)
    )
    cost = _judged(arrays.cost, window, ongoing, thresholds.hold_minutes)
    excess_cost = np.maximum(cost - baseline.cost, 0.0)
    per_minute = (attempts_per_minute >= surge[:, None] * np.maximum(base, 1.0)[:, None]) & (
        ratio_of(failures_per_minute, attempts_per_minute) >= share_limit[:, None]
    )
    run = _trailing_run(per_minute)
    evidence = {
        "attempts_per_minute": attempts,
        "baseline_attempts_per_minute": base,
        "surge_ratio": ratio_of(attempts, np.maximum(base, 1.0)),
        "failure_share_pct": 100 * share,
        "baseline_failure_share_pct": 100 * base_share,
        "excess_cost_per_minute": excess_cost,
        "minutes": np.maximum(run, window).astype(float),
    }
    money = excess_cost * thresholds.horizon_minutes
    return _flagged(
        "minute_retry_storm", storm, money, evidence, _since(arrays.minutes, run, window)
    )


def runaway(
    arrays: MinuteArrays,
    baseline: MinuteBaseline,
    budget_left: np.ndarray | None = None,
    thresholds: MinuteThresholds = MinuteThresholds(),
    ongoing: np.ndarray | None = None,
) -> Detection:
    """Runaways in the last `window_minutes`: volume far above the baseline, or a burn rate
    that would use up the month's remaining budget (`budget_left`, `(W,)`, NaN or inf: no
    budget) within `burn_hours`. Money: a day of the excess cost at the current rate."""
    n, t = arrays.shape
    if t == 0:
        return Detection.empty("runaway")
    window = min(thresholds.window_minutes, t)
    ongoing = np.zeros(n, dtype=bool) if ongoing is None else np.asarray(ongoing, dtype=bool)
    left = np.full(n, np.inf) if budget_left is None else np.asarray(budget_left, dtype=float)
    left = np.where(np.isnan(left), np.inf, left)
    invocations = _judged(arrays.invocations, window, ongoing, thresholds.hold_minutes)
    tokens = _judged(arrays.tokens, window, ongoing, thresholds.hold_minutes)
    cost = _judged(arrays.cost, window, ongoing, thresholds.hold_minutes)
    surge = _eased(thresholds.runaway_ratio, ongoing, thresholds.hold, 1.0)
    # A surge with failures is a retry storm (the other detector), not a runaway.
    # Failing: at least half the share and the number of failures a flagged storm has
    # (`storm_error_share` of `storm_min_excess`), so a lone error among a few calls is not.
    failures = _mean_window(arrays.errors + arrays.throttles, window)
    failing = (
        ratio_of(failures, _mean_window(arrays.invocations + arrays.throttles, window))
        >= np.maximum(thresholds.hold * thresholds.storm_error_share, 2 * baseline.failure_share)
    ) & (failures >= thresholds.hold * thresholds.storm_error_share * thresholds.storm_min_excess)
    by_calls = (
        (invocations >= surge * np.maximum(baseline.invocations, 1.0))
        & (
            invocations - baseline.invocations
            >= _eased(thresholds.runaway_min_invocations, ongoing, thresholds.hold)
        )
        & ~failing
    )
    by_tokens = (
        (tokens >= surge * np.maximum(baseline.tokens, 1.0))
        & (
            tokens - baseline.tokens
            >= _eased(thresholds.runaway_min_tokens, ongoing, thresholds.hold)
        )
        & ~failing
    )
    hours_left = ratio_of(np.maximum(left, 0.0), cost * 60.0)
    hours_left = np.where(cost > 0, hours_left, np.inf)
    hours_left = np.where(np.isinf(left), np.inf, hours_left)
    burn = (hours_left <= thresholds.burn_hours) & (
        cost >= _eased(thresholds.burn_ratio, ongoing, thresholds.hold, 1.0) * baseline.cost
    )
    found = by_calls | by_tokens | burn
    per_minute = (
        arrays.invocations >= surge[:, None] * np.maximum(baseline.invocations, 1.0)[:, None]
    ) | (arrays.tokens >= surge[:, None] * np.maximum(baseline.tokens, 1.0)[:, None])
    run = _trailing_run(per_minute)
    excess_cost = np.maximum(cost - baseline.cost, 0.0)
    evidence = {
        "invocations_per_minute": invocations,
        "baseline_invocations_per_minute": baseline.invocations,
        "tokens_per_minute": tokens,
        "baseline_tokens_per_minute": baseline.tokens,
        "surge_ratio": np.maximum(
            ratio_of(invocations, np.maximum(baseline.invocations, 1.0)),
            ratio_of(tokens, np.maximum(baseline.tokens, 1.0)),
        ),
        "cost_per_minute": cost,
        "baseline_cost_per_minute": baseline.cost,
        "hours_to_budget": hours_left,
        "budget_burn": burn.astype(float),
        "minutes": np.maximum(run, window).astype(float),
    }
    money = excess_cost * thresholds.horizon_minutes
    return _flagged("runaway", found, money, evidence, _since(arrays.minutes, run, window))


__all__ = [
    "MinuteArrays",
    "MinuteBaseline",
    "MinuteThresholds",
    "baseline_from_hours",
    "minute_retry_storm",
    "runaway",
]

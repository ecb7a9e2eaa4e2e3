"""Robust, weekday-aware spend anomalies on daily and hourly series.

A day is compared with what that weekday should cost today: the recent level (the median of
the last week, each day divided by its weekday factor, moved on to today by the robust trend
of the last four weekly medians) times the weekday's factor (each day over its centred 7-day
average, the median per weekday, shrunk towards 1 when the pattern is within noise). An hour
is compared with the median of the same hour on the previous days, adjusted by the weekday
factors. Scales are robust too: median absolute deviation (MAD), widened for right-skewed
series by the distance of the 90th percentile, so one bad day cannot hide the next and the
ordinary bursts of bursty traffic do not score as anomalies.

An anomaly needs all three: a robust z-score of at least `z`, an excess of at least
`min_amount` (money), and an excess of at least `min_ratio` of the expected value: so noise
on a tiny series, or a small wobble on a large one, never alerts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from economics._numeric import median
from economics.series import day_index, weekday

_MAD_TO_SIGMA = 1.4826
_MAX_SCORE = 1e9  # a finite stand-in for "infinitely many sigmas" (zero scale)


@dataclass(frozen=True, eq=False)
class Anomalies:
    """Scores for the evaluated periods (the last `T` days or hours).

    - `times`: `(T,)` datetime64 ([D] for days, [h] for hours) of the evaluated periods.
    - `actual`, `expected`, `excess` (= actual - expected, money), `scale` (robust sigma,
      money), `score` (excess / scale): `(W, T)` float64.
    - `is_anomaly`: `(W, T)` bool (spend above normal, past every threshold).
    - `weekday_factors`: `(W, 7)` Monday..Sunday spend relative to an average day (1 when
      unknown).
    """

    times: np.ndarray
    actual: np.ndarray
    expected: np.ndarray
    excess: np.ndarray
    scale: np.ndarray
    score: np.ndarray
    is_anomaly: np.ndarray
    weekday_factors: np.ndarray

    @property
    def latest(self) -> np.ndarray:
        """`(W,)` bool: anomalous in the last evaluated period."""
        if self.is_anomaly.shape[1] == 0:
            return np.zeros(self.is_anomaly.shape[0], dtype=bool)
        return self.is_anomaly[:, -1]


def weekday_factors(cost: np.ndarray, days: np.ndarray, weeks: int = 8) -> np.ndarray:
    """`(W, 7)` Monday..Sunday spend relative to an average day, from the last `weeks` weeks
    of `cost` `(W, D)`.

    Each day is divided by its centred 7-day moving average (so a trend does not leak into
    the factors), each weekday takes the median of its ratios, and the seven are shrunk
    towards 1 by the James-Stein factor (how far their spread exceeds what noise alone would
    give), so a series without a weekly pattern gets factors of about 1. Rows with under two weeks of ratios get 1.
    """
    n, n_days = cost.shape
    full_weeks = min(weeks, (n_days - 6) // 7)
    factors = np.ones((n, 7))
    if full_weeks < 2:
        return factors
    used = 7 * full_weeks + 6
    window = cost[:, n_days - used :]
    prefix = np.concatenate([np.zeros((n, 1)), np.cumsum(window, axis=1)], axis=1)
    moving = (prefix[:, 7:] - prefix[:, :-7]) / 7  # mean of days j..j+6, centred on j+3
    ratios = np.divide(window[:, 3:-3], moving, out=np.ones_like(moving), where=moving > 0)
    # (n, 7 positions, weeks), contiguous along the weeks for the sort
    block = np.ascontiguousarray(ratios.reshape(n, full_weeks, 7).transpose(0, 2, 1))
    medians = median(block)  # (n, 7) by position in the block
    overall = medians.mean(axis=1, keepdims=True)
    relative = np.divide(medians, overall, out=np.ones_like(medians), where=overall > 0)
    deviation = relative - 1
    # noise of one ratio (mean absolute deviation x 1.25: cheaper than a MAD, and an outlier
    # only inflates it, which shrinks more), then of a weekday's median of `full_weeks`
    noise = 1.2533 * np.abs(block - medians[:, :, None]).mean(axis=(1, 2))
    standard_error = 1.2533 * noise / np.sqrt(full_weeks)
    spread = np.sum(deviation**2, axis=1)
    keep = np.clip(
        1 - np.divide(6 * standard_error**2, spread, out=np.ones(n), where=spread > 0), 0.0, 1.0
    )
    positions = weekday(days[n_days - used + 3 : n_days - used + 10])  # block position -> day
    factors[:, positions] = 1 + keep[:, None] * deviation
    return factors


def daily_anomalies(
    cost: np.ndarray,
    days: np.ndarray,
    as_of=None,
    *,
    eval_days: int = 1,
    baseline_weeks: int = 8,
    level_days: int = 28,
    min_history: int = 7,
    z: float | np.ndarray = 3.5,
    min_amount: float | np.ndarray = 10.0,
    min_ratio: float | np.ndarray = 0.5,
    history_days: np.ndarray | None = None,
) -> Anomalies:
    """Score the last `eval_days` days up to `as_of` against the days before each of them.

    - `cost`: `(W, D)` daily spend; `days`: `(D,)` datetime64[D].
    - `z`, `min_amount`, `min_ratio`: scalars or `(W,)` per-workload thresholds.
    - `min_history`: days of spend a workload needs before its days are scored.
    - `history_days`: `(W,)` days since each row's first spend as of `as_of` (as
      `Forecast.history_days`), if already known; computed otherwise.
    """
    days = np.asarray(days).astype("datetime64[D]")
    end = days.size if as_of is None else day_index(days, as_of) + 1
    cost = np.asarray(cost, dtype=np.float64)[:, :end]
    days = days[:end]
    n, n_days = cost.shape
    evaluated = np.arange(max(n_days - eval_days, 0), n_days)
    shape = (n, evaluated.size)
    expected, scale = np.zeros(shape), np.ones(shape)  # unscored periods: any finite scale
    eligible = np.zeros(shape, dtype=bool)
    factors = np.ones((n, 7))
    if history_days is None:
        spent = cost != 0
        history_days = np.where(spent.any(axis=1), n_days - np.argmax(spent, axis=1), 0)
    first_spend = n_days - np.asarray(history_days)  # column of the first spend (n_days: none)

    for column, today in enumerate(evaluated):
        start = max(today - 7 * baseline_weeks, 0)
        baseline, baseline_days = cost[:, start:today], days[start:today]
        if baseline.shape[1] == 0:
            continue
        factors = weekday_factors(baseline, baseline_days, baseline_weeks)
        recent = baseline[:, -level_days:]
        recent_factors = factors[:, weekday(baseline_days[-level_days:])]
        level, slope = _robust_level(recent, recent_factors)
        steps = np.arange(-recent.shape[1], 1, dtype=float)  # ..., -1 (yesterday), 0 (today)
        path = np.maximum(level[:, None] + slope[:, None] * steps[None, :], 0.0)
        spread = _upper_scale(recent - path[:, :-1] * recent_factors)
        expected[:, column] = path[:, -1] * factors[:, weekday(days[today])]
        scale[:, column] = _scale_floor(spread, expected[:, column], recent, 0.05)
        eligible[:, column] = (today - first_spend) >= min_history

    actual = cost[:, evaluated]
    return _judge(
        days[evaluated], actual, expected, scale, eligible, factors, z, min_amount, min_ratio
    )


def hourly_anomalies(
    cost: np.ndarray,
    hours: np.ndarray,
    *,
    eval_hours: int = 1,
    baseline_days: int = 7,
    min_baseline_days: int = 3,
    factors: np.ndarray | None = None,
    z: float | np.ndarray = 3.5,
    min_amount: float | np.ndarray = 10.0,
    min_ratio: float | np.ndarray = 0.5,
) -> Anomalies:
    """Score the last `eval_hours` hours against the same hour of the previous days.

    - `cost`: `(W, H)` hourly spend; `hours`: `(H,)` datetime64[h].
    - `factors`: `(W, 7)` weekday factors (from `weekday_factors` on the daily series), so
      a Monday hour is compared with Sunday's after scaling by Monday/Sunday; None: none.
    - An hour needs at least `min_baseline_days` earlier days of the same hour to be scored.
    """
    hours = np.asarray(hours).astype("datetime64[h]")
    values = np.asarray(cost, dtype=np.float64)
    n, n_hours = values.shape
    evaluated = np.arange(max(n_hours - eval_hours, 0), n_hours)
    if factors is None:
        factors = np.ones((n, 7))
    expected = np.zeros((n, evaluated.size))
    scale = np.ones((n, evaluated.size))  # unscored hours: any finite scale
    eligible = np.zeros((n, evaluated.size), dtype=bool)
    for column, hour in enumerate(evaluated):  # a few hours: a loop over time, not workloads
        depth = min(baseline_days, int(hour) // 24)
        if depth < min_baseline_days:
            continue
        history = same_hour_history(values, hours, np.array([hour]), depth, factors)[:, 0, :]
        typical = median(history)
        mad = median(np.abs(history - typical[:, None]))
        expected[:, column] = typical
        scale[:, column] = _scale_floor(_MAD_TO_SIGMA * mad, typical, history, 0.1)
        eligible[:, column] = True
    actual = values[:, evaluated]
    return _judge(
        hours[evaluated], actual, expected, scale, eligible, factors, z, min_amount, min_ratio
    )


def same_hour_history(
    values: np.ndarray,
    hours: np.ndarray,
    evaluated: np.ndarray,
    depth: int,
    factors: np.ndarray | None = None,
) -> np.ndarray:
    """`(W, E, K)`: for each evaluated hour, the same hour 1..K days earlier (K <= depth).

    With `factors` `(W, 7)`, each earlier value is rescaled to the evaluated hour's weekday.
    Callers keep `depth <= evaluated // 24` so every lag exists.
    """
    lags = 24 * np.arange(1, depth + 1)
    index = evaluated[:, None] - lags[None, :]  # (E, K)
    history = values[:, index]
    if factors is not None:
        target = factors[:, weekday(hours[evaluated])]  # (W, E)
        source = factors[:, weekday(hours[index])]  # (W, E, K)
        ratio = np.divide(target[..., None], source, out=np.ones_like(source), where=source > 0)
        history = history * ratio
    return history


def _robust_level(recent: np.ndarray, recent_factors: np.ndarray):
    """Weekday-normalised level expected today, and its slope per day, from recent days.

    The level is the median of the last 7 normalised days, moved on to today by the trend:
    the Theil-Sen slope (median of pairwise slopes) of the weekly medians of up to four
    weeks, so a growing series is not judged against last week's level and one odd week
    does not make a trend. Under two weeks: the median, no slope. Days whose factor is 0
    count at the mean level.
    """
    n, length = recent.shape
    total_factor = recent_factors.sum(axis=1)
    mean_level = np.divide(
        recent.sum(axis=1), total_factor, out=np.zeros(n), where=total_factor > 0
    )
    normalised = np.divide(
        recent,
        recent_factors,
        out=np.repeat(mean_level[:, None], length, axis=1),
        where=recent_factors > 0,
    )
    weeks = min(length // 7, 4)
    if weeks < 2:
        return median(normalised), np.zeros(n)
    weekly = median(normalised[:, length - 7 * weeks :].reshape(n, weeks, 7), axis=2)
    first, second = np.triu_indices(weeks, k=1)
    slope = median((weekly[:, second] - weekly[:, first]) / (7.0 * (second - first)))
    return np.maximum(weekly[:, -1] + 4 * slope, 0.0), slope


def _upper_scale(residuals: np.ndarray) -> np.ndarray:
    """Robust scale of upward deviations, `(W,)` from `(W, T)` residuals: the larger of the
    MAD-based sigma and the 90th percentile's distance above the median / 1.28. The same
    for symmetric noise; wider for right-skewed spend (bursty traffic, long prompts), whose
    ordinary high days would otherwise score as anomalies."""
    ordered = np.sort(residuals, axis=1)
    count = ordered.shape[1]
    middle = 0.5 * (ordered[:, (count - 1) // 2] + ordered[:, count // 2])
    high = ordered[:, min(int(np.ceil(0.9 * count)) - 1, count - 1)]
    mad = median(np.abs(residuals - middle[:, None]))
    return np.maximum(_MAD_TO_SIGMA * mad, (high - middle) / 1.2816)


def _scale_floor(scale, expected, series, relative: float) -> np.ndarray:
    """`(W,)` scale kept above `relative` x expected and above the rounding noise of the
    row's values `series` `(W, T)` (so a constant row never divides by zero)."""
    tiny = np.maximum(1e-9 * np.abs(series).max(axis=1, initial=0.0), 1e-300)
    return np.maximum(np.maximum(scale, relative * np.abs(expected)), tiny)


def _judge(times, actual, expected, scale, eligible, factors, z, min_amount, min_ratio):
    def column(value):
        value = np.asarray(value, dtype=float)
        return value[:, None] if value.ndim == 1 else value

    excess = actual - expected
    # excess / scale, saturated at +-_MAX_SCORE without ever computing an overflowing ratio
    saturated = np.abs(excess) >= _MAX_SCORE * scale
    score = np.where(
        saturated, np.sign(excess) * _MAX_SCORE, excess / np.where(saturated, 1.0, scale)
    )
    is_anomaly = (
        eligible
        & (score >= column(z))
        & (excess >= column(min_amount))
        & (excess >= column(min_ratio) * np.abs(expected))
        & (excess > 0)
    )
    return Anomalies(times, actual, expected, excess, scale, score, is_anomaly, factors)


__all__ = [
    "Anomalies",
    "daily_anomalies",
    "hourly_anomalies",
    "same_hour_history",
    "weekday_factors",
]

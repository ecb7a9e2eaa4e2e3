"""Robust, weekday-aware spend anomalies on daily and hourly series.

A day is compared with what that weekday should cost today: the recent level (the median of
the last week, each day divided by its weekday factor, moved on to today by the robust trend
of the last four weekly medians) times the weekday's factor (each day over its centred 7-day
average, the median per weekday, shrunk towards 1 when the pattern is within noise). An hour
is compared with the median of the same hour on the previous days, adjusted by the weekday
factors. Scales are robust too: median absolute deviation (MAD), widened for right-skewed
series by the distance of the 90th percentile, so one bad day cannot hide the next and the
ordinary bursts of bursty traffic do not score as anomalies.

A lasting level shift (a new customer onboarded, a cost cut) alerts on its first days, as
any overspend does; once three days in a row sit at the new level, it is the level: the
days before the shift then no longer bend the trend or widen the scale, so the new level is
not an anomaly and a spike on top of it is still found.

An anomaly needs all three: a robust z-score of at least `z`, an excess of at least
`min_amount` (money), and an excess of at least `min_ratio` of the expected value: so noise
on a tiny series, or a small wobble on a large one, never alerts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from llmgov.economics._numeric import (
    BoolArray,
    FloatArray,
    IndexArray,
    Threshold,
    TimeArray,
    median,
)
from llmgov.economics.series import DayLike, day_index, weekday

_MAD_TO_SIGMA = 1.4826
_MAX_SCORE = 1e9  # a finite stand-in for "infinitely many sigmas" (zero scale)
# A lasting level shift (see `_level_shift`): the days at a new level before it becomes the
# level (those days alert as usual), and how far from the old level a day must be to count.
_SHIFT_SETTLE_DAYS = 3
_SHIFT_SIGMAS = 2.5
_SHIFT_MIN_RATIO = 0.2
_SHIFT_BETTER_FIT = 0.8  # a shift must fit the recent days this much better than the trend


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

    times: TimeArray
    actual: FloatArray
    expected: FloatArray
    excess: FloatArray
    scale: FloatArray
    score: FloatArray
    is_anomaly: BoolArray
    weekday_factors: FloatArray

    @property
    def latest(self) -> BoolArray:
        """`(W,)` bool: anomalous in the last evaluated period."""
        if self.is_anomaly.shape[1] == 0:
            return np.zeros(self.is_anomaly.shape[0], dtype=bool)
        return self.is_anomaly[:, -1]


def weekday_factors(cost: FloatArray, days: TimeArray, weeks: int = 8) -> FloatArray:
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
    cost: ArrayLike,
    days: ArrayLike,
    as_of: DayLike | None = None,
    *,
    eval_days: int = 1,
    baseline_weeks: int = 8,
    level_days: int = 28,
    min_history: int = 7,
    z: Threshold = 3.5,
    min_amount: Threshold = 10.0,
    min_ratio: Threshold = 0.5,
    history_days: ArrayLike | None = None,
) -> Anomalies:
    """Score the last `eval_days` days up to `as_of` against the days before each of them.

    - `cost`: `(W, D)` daily spend; `days`: `(D,)` datetime64[D].
    - `z`, `min_amount`, `min_ratio`: scalars or `(W,)` per-workload thresholds.
    - `min_history`: days of spend a workload needs before its days are scored.
    - `history_days`: `(W,)` days since each row's first spend as of `as_of` (as
      `Forecast.history_days`), if already known; computed otherwise.
    """
    day_axis: TimeArray = np.asarray(days).astype("datetime64[D]")
    end = day_axis.size if as_of is None else day_index(day_axis, as_of) + 1
    values = np.asarray(cost, dtype=np.float64)[:, :end]
    day_axis = day_axis[:end]
    n, n_days = values.shape
    evaluated = np.arange(max(n_days - eval_days, 0), n_days)
    shape = (n, evaluated.size)
    expected, scale = np.zeros(shape), np.ones(shape)  # unscored periods: any finite scale
    eligible = np.zeros(shape, dtype=bool)
    factors = np.ones((n, 7))
    if history_days is None:
        spent = values != 0
        history_days = np.where(spent.any(axis=1), n_days - np.argmax(spent, axis=1), 0)
    first_spend = n_days - np.asarray(history_days)  # column of the first spend (n_days: none)

    for column, today in enumerate(evaluated):
        start = max(today - 7 * baseline_weeks, 0)
        baseline, baseline_days = values[:, start:today], day_axis[start:today]
        if baseline.shape[1] == 0:
            continue
        factors = weekday_factors(baseline, baseline_days, baseline_weeks)
        recent = baseline[:, -level_days:]
        recent_factors = factors[:, weekday(baseline_days[-level_days:])]
        fit = _robust_level(recent, recent_factors)
        spread = _upper_scale((recent - fit.fitted * recent_factors) * fit.residual_weight)
        expected[:, column] = fit.level * factors[:, weekday(day_axis[today])]
        scale[:, column] = _scale_floor(spread, expected[:, column], recent, 0.05)
        eligible[:, column] = (today - first_spend) >= min_history

    actual = values[:, evaluated]
    return _judge(
        day_axis[evaluated], actual, expected, scale, eligible, factors, z, min_amount, min_ratio
    )


def hourly_anomalies(
    cost: ArrayLike,
    hours: ArrayLike,
    *,
    eval_hours: int = 1,
    baseline_days: int = 7,
    min_baseline_days: int = 3,
    factors: FloatArray | None = None,
    z: Threshold = 3.5,
    min_amount: Threshold = 10.0,
    min_ratio: Threshold = 0.5,
) -> Anomalies:
    """Score the last `eval_hours` hours against the same hour of the previous days.

    - `cost`: `(W, H)` hourly spend; `hours`: `(H,)` datetime64[h].
    - `factors`: `(W, 7)` weekday factors (from `weekday_factors` on the daily series), so
      a Monday hour is compared with Sunday's after scaling by Monday/Sunday; None: none.
    - An hour needs at least `min_baseline_days` earlier days of the same hour to be scored.
    """
    hour_axis: TimeArray = np.asarray(hours).astype("datetime64[h]")
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
        history = same_hour_history(values, hour_axis, np.array([hour]), depth, factors)[:, 0, :]
        typical = median(history)
        mad = median(np.abs(history - typical[:, None]))
        expected[:, column] = typical
        scale[:, column] = _scale_floor(_MAD_TO_SIGMA * mad, typical, history, 0.1)
        eligible[:, column] = True
    actual = values[:, evaluated]
    return _judge(
        hour_axis[evaluated], actual, expected, scale, eligible, factors, z, min_amount, min_ratio
    )


def same_hour_history(
    values: FloatArray,
    hours: TimeArray,
    evaluated: IndexArray,
    depth: int,
    factors: FloatArray | None = None,
) -> FloatArray:
    """`(W, E, K)`: for each evaluated hour, the same hour 1..K days earlier (K <= depth).

    With `factors` `(W, 7)`, each earlier value is rescaled to the evaluated hour's weekday.
    Callers keep `depth <= evaluated // 24` so every lag exists.
    """
    lags = 24 * np.arange(1, depth + 1)
    index = evaluated[:, None] - lags[None, :]  # (E, K)
    history: FloatArray = values[:, index]
    if factors is not None:
        target = factors[:, weekday(hours[evaluated])]  # (W, E)
        source = factors[:, weekday(hours[index])]  # (W, E, K)
        ratio = np.divide(target[..., None], source, out=np.ones_like(source), where=source > 0)
        history = history * ratio
    return history


@dataclass(frozen=True, eq=False)
class _LevelFit:
    """The weekday-normalised level expected today, and how the recent days fit it.

    - `level`: `(W,)` today's level; `fitted`: `(W, L)` the model's level on each recent day.
    - `residual_weight`: `(W, L)` multiplier of each day's residual before the scale is
      measured: 1, or new level / old level for the days before a level shift (so they
      count at the size of the new noise), or NaN to leave a day out of the scale.
    """

    level: FloatArray
    fitted: FloatArray
    residual_weight: FloatArray


def _robust_level(recent: FloatArray, recent_factors: FloatArray) -> _LevelFit:
    """Weekday-normalised level expected today, from the recent days `(W, L)`.

    Normally the level is the median of the last 7 normalised days, moved on to today by
    the trend: the Theil-Sen slope (median of pairwise slopes) of the weekly medians of up
    to four weeks, so a growing series is not judged against last week's level and one odd
    week does not make a trend. Under two weeks: the median, no slope. Days whose factor is
    0 count at the mean level.

    After a lasting level shift (`_level_shift`: a new customer, a cost cut), the days
    before it would bend that trend and widen the scale for weeks; so the level and trend
    are taken from the days since the shift only (their median until three whole weeks:
    a slope from two weekly medians alone is too noisy), and the days before it are
    measured against their own median for the scale.
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
    steps = np.arange(-length, 0, dtype=float)  # days before today: -L .. -1 (yesterday)
    level, slope = _trend_level(normalised)
    fitted = np.maximum(level[:, None] + slope[:, None] * steps, 0.0)
    residual_weight = np.ones((n, length))

    since, before = _level_shift(normalised)
    rows = np.flatnonzero(since > 0)  # usually few: the shift's own fit only for them
    if rows.size:
        since, before, recent_days = since[rows], before[rows], normalised[rows]
        level_after, slope_after = _trend_level(recent_days, since, min_weeks=3)
        after = steps >= -since[:, None]  # the days since the shift
        path_after = np.maximum(level_after[:, None] + slope_after[:, None] * steps, 0.0)
        step_fit = np.where(after, path_after, before[:, None])
        # A shift is only taken when it fits the recent days clearly better than the
        # trend does: a steady climb also leaves its early days far below the latest ones.
        step_error = np.abs(recent_days - step_fit).sum(axis=1)
        trend_error = np.abs(recent_days - fitted[rows]).sum(axis=1)
        better = step_error < _SHIFT_BETTER_FIT * trend_error
        new_to_old = np.divide(
            level_after, before, out=np.full(rows.size, np.nan), where=before > 0
        )
        shifted = rows[better]
        level[shifted] = level_after[better]
        fitted[shifted] = step_fit[better]
        # no old level (a workload new in the window): its days before are left out
        residual_weight[shifted] = np.where(after, 1.0, new_to_old[:, None])[better]
    return _LevelFit(level, fitted, residual_weight)


def _trend_level(
    normalised: FloatArray, days: IndexArray | None = None, min_weeks: int = 2
) -> tuple[FloatArray, FloatArray]:
    """`(W,)` level today and slope per day from the last `days` `(W,)` of each row (None:
    all): the latest weekly median moved on by the Theil-Sen slope of up to four weekly
    medians when at least `min_weeks` whole weeks are available; otherwise the median of
    those days, no slope."""
    n, length = normalised.shape
    if days is None:
        days = np.full(n, length)
    weeks = min(length // 7, 4)
    whole_weeks = np.minimum(days // 7, weeks)
    sloped = whole_weeks >= min_weeks
    slope, level = np.zeros(n), np.zeros(n)
    if not sloped.all():
        in_days = np.arange(length)[None, :] >= length - days[:, None]
        level = _masked_median(normalised, in_days)
    if sloped.any():
        weekly = median(normalised[:, length - 7 * weeks :].reshape(n, weeks, 7), axis=2)
        first, second = np.triu_indices(weeks, k=1)
        pair_slopes = (weekly[:, second] - weekly[:, first]) / (7.0 * (second - first))
        usable = first[None, :] >= weeks - whole_weeks[:, None]  # both weeks inside the days
        slope = np.where(sloped, _masked_median(pair_slopes, usable), 0.0)
        level = np.where(sloped, weekly[:, -1] + 4 * slope, level)
    return np.maximum(level, 0.0), slope


def _level_shift(
    normalised: FloatArray, settle_days: int = _SHIFT_SETTLE_DAYS
) -> tuple[IndexArray, FloatArray]:
    """`(W,)` days since a lasting level shift in the normalised recent days (0: none), and
    `(W,)` the median level before it.

    The latest `settle_days` days set the candidate new level. Each earlier day scores +1
    when it lies beyond a band below (or above) that level and -1 when it does not; the
    shift is where the running total peaks (a CUSUM), and counts when that total reaches
    `settle_days` and every one of the latest `settle_days` days lies beyond the band
    from the old level's median, on the same side. The band is the larger of
    `_SHIFT_SIGMAS` day-to-day noise sigmas (from first differences, which a single step
    barely moves) and `_SHIFT_MIN_RATIO` of the new level, so noise, a one- or two-day
    incident, or a day or two of a new level are not a shift: those still alert.
    """
    n, length = normalised.shape
    since, before = np.zeros(n, dtype=int), np.zeros(n)
    if length < 2 * settle_days:
        return since, before
    latest = median(normalised[:, -settle_days:])
    # A wider band only lowers the peak, so the noise (two sorts) is measured only for the
    # rows that have a shift within the narrowest band.
    peak, _ = _cusum_split(normalised, latest, _SHIFT_MIN_RATIO * latest, settle_days)
    rows = np.flatnonzero(peak >= settle_days)
    if rows.size == 0:
        return since, before
    values, latest = normalised[rows], latest[rows]
    differences = np.diff(values, axis=1)
    typical = median(differences)
    noise = _MAD_TO_SIGMA * median(np.abs(differences - typical[:, None])) / np.sqrt(2)
    band = np.maximum(_SHIFT_SIGMAS * noise, _SHIFT_MIN_RATIO * latest)
    peak, start = _cusum_split(values, latest, band, settle_days)
    old_level = _masked_median(values, np.arange(length)[None, :] < start[:, None])
    newest = values[:, -settle_days:]
    held = np.all(newest > (old_level + band)[:, None], axis=1) | np.all(
        newest < (old_level - band)[:, None], axis=1
    )
    found = (peak >= settle_days) & held
    since[rows[found]] = length - start[found]
    before[rows[found]] = old_level[found]
    return since, before


def _cusum_split(
    values: FloatArray, latest: FloatArray, band: FloatArray, settle_days: int
) -> tuple[IndexArray, IndexArray]:
    """`(W,)` the CUSUM peak and `(W,)` the column where the days at the `latest` level
    start (see `_level_shift`), the better of a shift up and a shift down."""
    candidates = values.shape[1] - settle_days  # the shift starts at column 1 .. candidates
    best_peak = np.full(values.shape[0], -candidates - 1)
    best_start = np.zeros(values.shape[0], dtype=int)
    for off_level in (values < (latest - band)[:, None], values > (latest + band)[:, None]):
        total = np.cumsum(np.where(off_level[:, :candidates], 1, -1), axis=1)
        peak = total.max(axis=1)
        better = peak > best_peak
        best_peak = np.where(better, peak, best_peak)
        best_start = np.where(better, total.argmax(axis=1) + 1, best_start)
    return best_peak, best_start


def _masked_median(values: FloatArray, mask: BoolArray) -> FloatArray:
    """`(W,)` median of each row's values where `mask` `(W, K)` is True (0 where none)."""
    ordered = np.sort(np.where(mask, values, np.nan), axis=1)  # NaN sorts last
    count = mask.sum(axis=1)
    low = np.take_along_axis(ordered, np.maximum((count - 1) // 2, 0)[:, None], axis=1)[:, 0]
    high = np.take_along_axis(ordered, np.minimum(count // 2, values.shape[1] - 1)[:, None], axis=1)
    return np.where(count > 0, 0.5 * (low + high[:, 0]), 0.0)


def _upper_scale(residuals: FloatArray) -> FloatArray:
    """Robust scale of upward deviations, `(W,)` from `(W, T)` residuals (NaN: left out):
    the larger of the MAD-based sigma and the 90th percentile's distance above the median /
    1.28. The same for symmetric noise; wider for right-skewed spend (bursty traffic, long
    prompts), whose ordinary high days would otherwise score as anomalies."""
    ordered = np.sort(residuals, axis=1)  # NaN sorts last
    count = np.maximum(np.count_nonzero(~np.isnan(ordered), axis=1), 1)

    def at(position: NDArray[np.integer[Any]]) -> FloatArray:
        return np.take_along_axis(ordered, position[:, None], axis=1)[:, 0]

    middle = 0.5 * (at((count - 1) // 2) + at(count // 2))
    high = at(np.ceil(0.9 * count).astype(int) - 1)
    deviations = np.abs(residuals - middle[:, None])
    mad = _masked_median(deviations, ~np.isnan(deviations))
    return np.maximum(_MAD_TO_SIGMA * mad, (high - middle) / 1.2816)


def _scale_floor(
    scale: FloatArray, expected: FloatArray, series: FloatArray, relative: float
) -> FloatArray:
    """`(W,)` scale kept above `relative` x expected and above the rounding noise of the
    row's values `series` `(W, T)` (so a constant row never divides by zero)."""
    tiny = np.maximum(1e-9 * np.abs(series).max(axis=1, initial=0.0), 1e-300)
    floored: FloatArray = np.maximum(np.maximum(scale, relative * np.abs(expected)), tiny)
    return floored


def _judge(
    times: TimeArray,
    actual: FloatArray,
    expected: FloatArray,
    scale: FloatArray,
    eligible: BoolArray,
    factors: FloatArray,
    z: Threshold,
    min_amount: Threshold,
    min_ratio: Threshold,
) -> Anomalies:
    def column(threshold: Threshold) -> FloatArray:
        value = np.asarray(threshold, dtype=np.float64)
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

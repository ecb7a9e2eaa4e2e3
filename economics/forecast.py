"""Spend projections for every workload at once: month end, the next 30 and 90 days, each with
a range, the projected daily path and the date each monthly budget runs out.

All workloads share one time axis, so a trend-plus-weekday least-squares fit is one matrix
product for every series: the coefficients are `Y @ pinv(X).T` with `X` the shared design
matrix. Series with spend every day are also fitted in logs (growth as a rate, weekday
effects as ratios), and their projection mixes the two fits by (tempered) Akaike weights:
the linear fit lags exponential growth, the log fit overshoots linear growth. What each
series may use of its history differs, though:

- a new workload has only a few days: its series is put in the group whose window fits its
  history (56, 28 or 14 days), or projected at its run rate when it has under 14 days;
- a level shift (a step up or down that a line does not explain) is detected and the series
  is refitted on the days after it, the same way as a new workload;
- outlying days (an incident, a gap that reads as zero) are clipped before the final fit;
- a trend that is not clearly there is shrunk towards flat (pivoting halfway between the
  window's centre and its last day), so noise is not extrapolated;
- the last day's residual is carried forward for as long as the series' noise remembers.

Ranges are for sums of days (the rest of the month, the next 30 and 90), not for one day
repeated: the noise around each fit is modelled as AR(1) plus white noise, a random walk
included, and the variance of the error of each sum follows exactly for the shared design
(`economics.ranges`), with the slope as kept and what shrinking it moved the sum by; where
the linear and log fits disagree the range holds both. The sds are calibrated on simulated
noise so that the 90% range holds 90% of the time (z = 1.645, the default); `python
benchmarks/backtest.py --only ranges` measures it on generated flat, trending,
autocorrelated and random-walk series. Series under 14 days old are projected at their run
rate with a Student-t range. The month-end range is for the whole month: spent so far plus
the projected rest. Money is float inside the core.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike, NDArray

from llmgov.economics._numeric import FloatArray, TimeArray, matmul, median
from llmgov.economics.ranges import PIVOT, error_model, keep_of, moved_by_shrinking, t_factor
from llmgov.economics.series import DAY, DayLike, day_index, weekday

# Fit windows, longest first: a series uses the longest window its usable history fills.
WEEKDAY_WINDOWS = (56, 28)
TREND_WINDOW = 14
RUN_RATE_WINDOW = 7

METHODS = ("none", "run_rate", "trend_14", "trend_28", "trend_56")
"""Names of the `Forecast.method` codes: 0 no spend at all, 1 run rate (under 14 days of
usable history), 2 level + trend on 14 days, 3 and 4 level + trend + weekday on 28 / 56 days."""

_MAD_TO_SIGMA = 1.4826
_CLIP_SIGMAS = 4.0  # residuals beyond this many robust sigmas are clipped before refitting
_CLIP_ROUNDS = 2
_TREND_DRIFT = 0.5  # per-day ranges allow the trend to be half as steep, or half as steep again
_Z_NORMAL = 1.645  # the run rate's t widening is computed at the 90% level, for any z
# Akaike weights of the linear and log fits use a quarter of the evidence (exp(-dAIC / 8)):
# with multiplicative noise the criterion prefers the log fit even for linear growth, and a
# softer weight keeps both in the projection and its range (backtest, trending series:
# coverage 0.87 at full weight, 0.89 at half, 0.91 here; MAPE 2.93%, 2.88%, 2.85%)
_TEMPER = 4.0


@dataclass(frozen=True, eq=False)
class Forecast:
    """Projections for W workloads as of one day (`as_of`, the last day of data used).

    Money fields are `(W,)` float64 in the currency of the input, low/high the bounds of the
    range (`z` sigmas; 90% by default), never below what is already spent, never negative.

    - `month_to_date`: spend from the 1st of the month through `as_of`.
    - `month_end` / `_low` / `_high`: projected spend for the whole calendar month.
    - `naive_month_end`: the run-rate projection most tools use (MTD / days elapsed x days in
      month), for comparison.
    - `next_30` / `next_90` (and `_low` / `_high`): spend projected over the next 30 / 90 days
      after `as_of`.
    - `path_days`: `(horizon,)` datetime64[D], the days after `as_of`.
    - `daily_path`: `(W, horizon)` projected spend per day; `daily_low`, `daily_high`: its
      per-day range (computed on first access: the analysis itself needs only the totals').
    - `budget`: `(W,)` the monthly budget given (NaN: none).
    - `exhaustion_date`: `(W,)` datetime64[D], the day the month's cumulative spend reaches
      the budget (already past, or projected within this month), NaT when it does not.
    - `exhaustion_date_earliest`: the same on the high side of the range ("as early as").
    - `level`: `(W,)` expected spend of the next day; `trend_per_day`: `(W,)` money per day per
      day after shrinkage; `daily_sigma`: `(W,)` residual scale of one day; `next_day_sd`:
      `(W,)` standard deviation of the next day's spend (noise, autocorrelation, fit).
    - `z`: the half-width of the ranges, in standard deviations.
    - `history_days`: `(W,)` int, days since the first day with spend (0: never spent).
    - `level_shift_on`: `(W,)` datetime64[D], first day of the regime after a detected level
      shift (NaT: none).
    - `method`: `(W,)` int8 codes into `METHODS`.
    """

    as_of: np.datetime64
    month_to_date: FloatArray
    month_end: FloatArray
    month_end_low: FloatArray
    month_end_high: FloatArray
    naive_month_end: FloatArray
    next_30: FloatArray
    next_30_low: FloatArray
    next_30_high: FloatArray
    next_90: FloatArray
    next_90_low: FloatArray
    next_90_high: FloatArray
    path_days: TimeArray
    daily_path: FloatArray
    budget: FloatArray
    exhaustion_date: TimeArray
    exhaustion_date_earliest: TimeArray
    level: FloatArray
    trend_per_day: FloatArray
    daily_sigma: FloatArray
    history_days: NDArray[np.int64]
    level_shift_on: TimeArray
    method: NDArray[np.int8]
    next_day_sd: FloatArray
    z: float

    @cached_property
    def daily_low(self) -> FloatArray:
        """`(W, horizon)` low end of each day's range (never negative)."""
        low: FloatArray = np.maximum(self.daily_path - self._daily_half_width, 0.0)
        return low

    @cached_property
    def daily_high(self) -> FloatArray:
        """`(W, horizon)` high end of each day's range."""
        high: FloatArray = self.daily_path + self._daily_half_width
        return high

    @cached_property
    def _daily_half_width(self) -> FloatArray:
        # day h: the next day's spread, widened by the trend's allowance for drifting
        steps = np.arange(1, self.daily_path.shape[1] + 1)
        drift = _TREND_DRIFT * np.abs(self.trend_per_day)[:, None] * steps
        half_width: FloatArray = self.z * np.sqrt(self.next_day_sd[:, None] ** 2 + drift**2)
        return half_width


def forecast(
    cost: np.ndarray,
    days: np.ndarray,
    as_of: DayLike | None = None,
    budgets: np.ndarray | float | None = None,
    *,
    horizon: int = 90,
    z: float = 1.645,
    known: np.ndarray | None = None,
) -> Forecast:
    """Project spend for every workload (rows of `cost`) in one vectorised pass.

    - `cost`: `(W, D)` spend per day; `days`: `(D,)` consecutive datetime64[D].
    - `as_of`: the last day to use (a date or datetime64; default the last column). Later
      columns are ignored, so a backtest can pass the full history.
    - `budgets`: `(W,)` or a scalar monthly budget; NaN or None: no budget.
    - `horizon`: days of daily path to return (at least 90).
    - `z`: half-width of the range in sigmas (1.645: a 90% range).
    - `known`: optional `(W, D)` bool, False where a day is missing (not zero): those days are
      filled with the series' median before fitting.
    """
    days = np.asarray(days).astype("datetime64[D]")
    end = days.size if as_of is None else day_index(days, as_of) + 1
    spend = np.asarray(cost, dtype=np.float64)[:, :end]
    days = days[:end]
    n_workloads, n_days = spend.shape
    horizon = max(int(horizon), 90)
    as_of_day = days[-1]
    if known is not None:
        spend = _fill_missing(spend, np.asarray(known, dtype=bool)[:, :end])

    # This calendar month: what is spent, what remains.
    month_start = as_of_day.astype("datetime64[M]").astype("datetime64[D]")
    month_days = int(
        ((as_of_day.astype("datetime64[M]") + 1).astype("datetime64[D]") - month_start) / DAY
    )
    elapsed = int((as_of_day - month_start) / DAY) + 1
    elapsed_with_data = min(elapsed, n_days)
    remaining = month_days - elapsed
    this_month = spend[:, n_days - elapsed_with_data :]
    month_to_date = this_month.sum(axis=1)
    naive = np.maximum(month_to_date, 0.0) / elapsed_with_data * (elapsed_with_data + remaining)
    # Ranges are computed for the sums of the first 1..R days (R >= the rest of the month
    # and 30) and of 90 days: not for every day of the path, which nobody reads.
    reach = max(remaining, 30)
    horizons = np.append(np.arange(1, reach + 1), 90)

    window = min(WEEKDAY_WINDOWS[0], n_days)
    recent = spend[:, n_days - window :]
    history = _days_since_first_spend(spend)
    shift_age = _level_shift_age(recent, weekday(days[n_days - window :]))
    usable = np.where(shift_age > 0, np.minimum(history, shift_age), history)

    path_days = as_of_day + DAY * np.arange(1, horizon + 1)
    path = np.zeros((n_workloads, horizon))
    spread = np.zeros((n_workloads, horizons.size))
    trend = np.zeros(n_workloads)
    sigma = np.zeros(n_workloads)
    method = np.zeros(n_workloads, dtype=np.int8)

    # Least-squares groups: the longest window each series' usable history fills.
    assigned = np.zeros(n_workloads, dtype=bool)
    for code, fit_window, with_weekdays in ((4, 56, True), (3, 28, True), (2, TREND_WINDOW, False)):
        rows = np.flatnonzero(~assigned & (usable >= fit_window))
        assigned[rows] = True
        if rows.size == 0:
            continue
        window = spend[rows, n_days - fit_window :]
        window_days = days[n_days - fit_window :]
        fit = _fit_group(window, window_days, path_days, horizons, with_weekdays, False)
        # Rows with spend every day also get the fit of log spend (growth as a rate, weekday
        # effects as ratios) and the projection is the average of the two: in the backtest
        # the average beat either alone (the linear fit lags exponential growth, the log
        # fit overshoots linear growth and amplifies noise).
        positive = np.flatnonzero(np.all(window > 0, axis=1))
        if positive.size:
            logged = _fit_group(
                window[positive], window_days, path_days, horizons, with_weekdays, True
            )
            fit = _average(fit, logged, positive, horizons)
        path[rows], spread[rows] = fit.path, fit.spread
        trend[rows], sigma[rows], method[rows] = fit.trend, fit.sigma, code

    rows = np.flatnonzero(~assigned & (usable > 0))
    if rows.size:
        run = _run_rate(spend[rows], usable[rows], horizon, horizons)
        path[rows], spread[rows], sigma[rows], method[rows] = run.path, run.spread, run.sigma, 1

    np.maximum(path, 0.0, out=path)
    cumulative = np.cumsum(path[:, :reach], axis=1)

    def total(
        days_ahead: int, sums: FloatArray, column: int
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        if days_ahead <= 0:
            zero = np.zeros(n_workloads)
            return zero, zero, zero
        half_width = z * spread[:, column]
        return sums, np.maximum(sums - half_width, 0.0), sums + half_width

    rest, rest_low, rest_high = total(
        remaining, cumulative[:, max(remaining - 1, 0)], max(remaining - 1, 0)
    )
    next_30 = total(30, cumulative[:, 29], 29)
    next_90 = total(90, path[:, :90].sum(axis=1), horizons.size - 1)

    budget = _per_workload(budgets, n_workloads)
    exhausted = _exhaustion_dates(this_month, cumulative[:, :remaining], budget, as_of_day)
    high_cumulative = cumulative[:, :remaining] + z * spread[:, :remaining]
    exhausted_earliest = _exhaustion_dates(this_month, high_cumulative, budget, as_of_day)

    shift_on = np.full(n_workloads, np.datetime64("NaT"), dtype="datetime64[D]")
    shifted = shift_age > 0
    shift_on[shifted] = as_of_day - DAY * (shift_age[shifted] - 1)

    return Forecast(
        as_of=as_of_day,
        month_to_date=month_to_date,
        month_end=month_to_date + rest,
        month_end_low=month_to_date + rest_low,
        month_end_high=month_to_date + rest_high,
        naive_month_end=naive,
        next_30=next_30[0],
        next_30_low=next_30[1],
        next_30_high=next_30[2],
        next_90=next_90[0],
        next_90_low=next_90[1],
        next_90_high=next_90[2],
        path_days=path_days,
        daily_path=path,
        budget=budget,
        exhaustion_date=exhausted,
        exhaustion_date_earliest=exhausted_earliest,
        level=path[:, 0].copy(),
        trend_per_day=trend,
        daily_sigma=sigma,
        history_days=history,
        level_shift_on=shift_on,
        method=method,
        next_day_sd=spread[:, 0].copy(),
        z=float(z),
    )


@dataclass(frozen=True)
class _Projection:
    path: FloatArray  # (n, horizon) spend per day
    spread: FloatArray  # (n, K) standard deviation of the sum of the first h days, h in horizons
    trend: FloatArray  # (n,) money per day per day
    sigma: FloatArray  # (n,) money, one day's residual scale
    criterion: FloatArray | None = None  # (n,) AIC of the fit, in the units of spend


def _design(days: np.ndarray, time: np.ndarray, with_weekdays: bool) -> np.ndarray:
    """Rows [1, t, weekday effects (Mon..Sat coded against Sunday = -1)]."""
    columns = [np.ones_like(time), time]
    if with_weekdays:
        day_of_week = weekday(days)
        for k in range(6):
            columns.append((day_of_week == k).astype(float) - (day_of_week == 6))
    return np.stack(columns, axis=1)


def _fit_group(
    series: np.ndarray,
    days: np.ndarray,
    future_days: np.ndarray,
    horizons: np.ndarray,
    with_weekdays: bool,
    log_scale: bool,
) -> _Projection:
    """Robust trend (+ weekday) least squares for a group sharing one window: `(n, L)`.

    With `log_scale` (rows with spend every day) the fit is of log spend: growth is a rate
    and weekday effects are ratios, as spend usually behaves; the projection is transformed
    back with Duan's smearing factor (the mean of exp(residual)).
    """
    n, length = series.shape
    values = np.log(series) if log_scale else series
    time = np.arange(length, dtype=float) - (length - 1) / 2
    future_time = (length - 1) / 2 + np.arange(1, future_days.size + 1, dtype=float)
    design = _design(days, time, with_weekdays)
    future = _design(future_days, future_time, with_weekdays)
    params = design.shape[1]
    pseudo_inverse = np.linalg.pinv(design)  # (p, L)

    # Clip outlying days (incidents, gaps) and refit, twice. Sparse rows (spend on under half
    # the days) are left alone: there a rare day of spend is the pattern, not an outlier.
    coefficients = matmul(values, pseudo_inverse.T)
    residuals = values - matmul(coefficients, design.T)
    if log_scale:
        dense, floor = np.ones(n, dtype=bool), np.full(n, 0.01)  # 1% of the level
    else:
        dense = np.count_nonzero(series, axis=1) * 2 >= length
        floor = 0.05 * np.abs(series.mean(axis=1))  # a constant row has no spread to measure
    cleaned = values
    rows = np.flatnonzero(dense)
    for _ in range(_CLIP_ROUNDS):
        # only rows with a day past the limit change, and only they are refitted
        part = residuals[rows]
        robust = np.maximum(_MAD_TO_SIGMA * median(np.abs(part)), floor[rows])
        limit = (_CLIP_SIGMAS * robust)[:, None]
        beyond = np.abs(part) > limit
        hit = np.flatnonzero(beyond.any(axis=1))
        if hit.size == 0:
            break
        if cleaned is values:
            cleaned = values.copy()
        rows, part, limit = rows[hit], part[hit], limit[hit]
        cleaned[rows] -= part - np.clip(part, -limit, limit)
        coefficients[rows] = matmul(cleaned[rows], pseudo_inverse.T)
        residuals[rows] = cleaned[rows] - matmul(coefficients[rows], design.T)

    energy = np.einsum("ij,ij->i", residuals, residuals)
    sigma = np.sqrt(energy / max(length - params, 1))
    # The noise around the line as AR(1) (phi in [0, 1], 1 a random walk) plus white noise,
    # fitted from the residuals' first lags: the variance of the error of every h-day sum,
    # and of the slope, follow exactly for this design (see economics.ranges).
    noise = error_model(design, future, horizons).fit(residuals)

    # Shrink a trend that is not clearly there (positive-part James-Stein on its t-statistic,
    # the slope's sd from the fitted noise); the last residual is then measured from the
    # shrunk line, so a wandering level is followed and noise about a level is not.
    keep = keep_of(coefficients[:, 1], np.sqrt(noise.slope_variance))
    shrunk = (1 - keep) * coefficients[:, 1]
    coefficients[:, 1] *= keep
    pivot = PIVOT * time[-1]
    coefficients[:, 0] += shrunk * pivot
    last_residual = residuals[:, -1] + shrunk * (time[-1] - pivot)
    memory = noise.memory(future_days.size)  # (n, H) the last residual's weight each day
    # sd of each h-day sum: the noise's, for the slope as kept, and what shrinking moved
    # the sum by (the trend may be real); calibrated
    carry = np.cumsum(memory[:, : int(horizons.max())], axis=1)[:, horizons - 1]
    moved = moved_by_shrinking(shrunk, design, horizons, carry)
    spread = np.sqrt(noise.sum_variance(keep, moved))

    # the last day's residual, carried forward as phi^j: noise that remembers is news
    carried = last_residual[:, None] * memory
    if log_scale:
        # Duan's smearing factor, folded into the level: exp(fit) alone is the median
        coefficients[:, 0] += np.log(np.mean(np.exp(residuals), axis=1))
        path = matmul(coefficients, future.T) + carried
        # no projection beyond 10x the window's highest day: growth like that is news.
        # The peak of a line plus weekday effects is at an end, give or take the effects.
        ceiling = np.log(series.max(axis=1)) + np.log(10.0)
        swing = 2 * np.abs(future[:, 2:]).max(initial=0) * np.abs(coefficients[:, 2:]).sum(axis=1)
        steep = np.flatnonzero(np.maximum(path[:, 0], path[:, -1]) + swing > ceiling)
        path[steep] = np.minimum(path[steep], ceiling[steep, None])
        np.exp(path, out=path)
        sums = _sums_at(path, horizons)  # (n, K) sum of the first h days
        # an error of e in the mean log of h days moves their sum by about sum x e
        spread = sums * spread / horizons
        trend = coefficients[:, 1] * path[:, 0]  # money per day per day, at the start
        sigma = sigma * path[:, 0]
    else:
        path = matmul(coefficients, future.T) + carried
        trend = coefficients[:, 1].copy()
    # Akaike's criterion in the units of spend (a log fit pays the Jacobian, 2 sum log y),
    # up to what both fits share (same parameters, same days); a perfect fit is floored
    if log_scale:
        floor = 1e-20 * length
        criterion = length * np.log(np.maximum(energy, floor)) + 2 * values.sum(axis=1)
    else:
        floor = 1e-20 * np.maximum(np.einsum("ij,ij->i", values, values), 1e-300)
        criterion = length * np.log(np.maximum(energy, floor))
    return _Projection(path, spread, trend, sigma, criterion)


def _sums_at(values: np.ndarray, horizons: np.ndarray) -> np.ndarray:
    """`(n, K)` sums of the first h columns of `values` for each h in `horizons`."""
    reach = int(horizons.max())
    if reach <= 31 or horizons.size <= 1:
        return np.cumsum(values[:, :reach], axis=1)[:, horizons - 1]
    short = horizons[horizons <= 31]
    out = np.empty((values.shape[0], horizons.size))
    out[:, : short.size] = np.cumsum(values[:, : int(short.max())], axis=1)[:, short - 1]
    for column in range(short.size, horizons.size):  # the few long horizons (90)
        out[:, column] = values[:, : horizons[column]].sum(axis=1)
    return out


def _average(
    whole: _Projection, part: _Projection, rows: np.ndarray, horizons: np.ndarray
) -> _Projection:
    """`whole` with `rows` replaced by the mixture of `whole` (the linear fit) and `part`
    (the log fit of those rows), weighted by Akaike weights: the fit that explains the
    window better counts more (the linear one lags exponential growth, the log one
    overshoots linear growth).

    The range is the mixture's: the weighted variances plus the variance between the two
    projections, so a range widens where the fits disagree."""
    if whole.criterion is None or part.criterion is None:
        raise ValueError("averaging needs the criterion of both fits")
    gap = np.clip(0.5 * (part.criterion - whole.criterion[rows]) / _TEMPER, -50.0, 50.0)
    weight = 1.0 / (1.0 + np.exp(gap))  # the log fit's
    difference = _sums_at(whole.path[rows], horizons) - _sums_at(part.path, horizons)
    w = weight[:, None]
    whole.spread[rows] = np.sqrt(
        (1 - w) * whole.spread[rows] ** 2 + w * part.spread**2 + w * (1 - w) * difference**2
    )

    def mix(a: FloatArray, b: FloatArray) -> FloatArray:
        share = weight.reshape(-1, *([1] * (b.ndim - 1)))
        a[rows] = (1 - share) * a[rows] + share * b
        return a

    return _Projection(
        mix(whole.path, part.path),
        whole.spread,
        mix(whole.trend, part.trend),
        mix(whole.sigma, part.sigma),
    )


def _run_rate(
    spend: np.ndarray, usable: np.ndarray, horizon: int, horizons: np.ndarray
) -> _Projection:
    """Flat projection at the mean of the last `min(usable, 7)` days, for short histories."""
    n, n_days = spend.shape
    window = min(RUN_RATE_WINDOW, n_days)
    last = spend[:, n_days - window :][:, ::-1]  # most recent first
    counts = np.clip(usable, 1, window)
    sums = np.cumsum(last, axis=1)[np.arange(n), counts - 1]
    squares = np.cumsum(last**2, axis=1)[np.arange(n), counts - 1]
    mean = sums / counts
    variance = np.maximum(squares / counts - mean**2, 0.0) * counts / np.maximum(counts - 1, 1)
    # One day says nothing about the spread: take the day's own size as its uncertainty.
    sigma = np.where(counts > 1, np.sqrt(variance), np.abs(mean))
    # noise of each day, plus the uncertainty of the mean carried over every day
    spread = sigma[:, None] * np.sqrt(horizons + horizons**2 / counts[:, None])
    # a scale measured on a few days is itself uncertain: Student-t with counts - 1 df
    spread *= np.where(counts > 1, t_factor(_Z_NORMAL, counts - 1), 1.0)[:, None]
    return _Projection(np.repeat(mean[:, None], horizon, axis=1), spread, np.zeros(n), sigma)


def _days_since_first_spend(spend: np.ndarray) -> np.ndarray:
    nonzero = spend != 0
    first = np.argmax(nonzero, axis=1)
    return np.where(nonzero.any(axis=1), spend.shape[1] - first, 0).astype(np.int64)


def _level_shift_age(
    recent: np.ndarray,
    day_of_week: np.ndarray,
    *,
    min_before: int = 7,
    min_after: int = 3,
    sse_ratio: float = 0.7,
    min_t: float = 5.0,
    min_relative: float = 0.2,
) -> np.ndarray:
    """Days since the most significant level shift in each row (0: none).

    A step (two constant levels) must explain the weekday-adjusted series much better than a
    straight line does (so a steady trend is not a shift), the jump must be significant and
    at least `min_relative` of the larger level. Prefix sums make every split O(1).
    """
    n, length = recent.shape
    ages = np.zeros(n, dtype=np.int64)
    if length < min_before + min_after or n == 0:
        return ages
    row_mean = recent.mean(axis=1)
    one_hot = (day_of_week[:, None] == np.arange(7)[None, :]).astype(float)
    counts = np.maximum(one_hot.sum(axis=0), 1)
    # Minus each row's weekday means (which also centres it). float32 halves the memory
    # traffic; a detection threshold needs no more precision.
    weekday_means = matmul(recent, one_hot) / counts
    adjusted = (recent - matmul(weekday_means, one_hot.T)).astype(np.float32)

    prefix = np.cumsum(adjusted, axis=1)
    splits = np.arange(min_before, length - min_after + 1)  # first day of the new level
    before = splits.astype(np.float32)
    after = (length - splits).astype(np.float32)
    sum_before = prefix[:, splits - 1]
    sum_after = prefix[:, -1:] - sum_before
    # SSE of two levels = sum of squares - sum_before^2/before - sum_after^2/after
    explained = sum_before * sum_before / before + sum_after * sum_after / after
    best = np.argmax(explained, axis=1)
    rows = np.arange(n)
    squares = np.einsum("ij,ij->i", adjusted, adjusted, dtype=np.float64)
    total = prefix[:, -1].astype(np.float64)
    sse_step = np.maximum(squares - explained[rows, best], 0.0)

    time = np.arange(length) - (length - 1) / 2
    slope_fit = matmul(adjusted.astype(np.float64), time[:, None])[:, 0]
    sse_line = np.maximum(squares - total**2 / length - slope_fit**2 / (time @ time), 0.0)

    n_before, n_after = before[best].astype(float), after[best].astype(float)
    mean_before = sum_before[rows, best] / n_before
    mean_after = sum_after[rows, best] / n_after
    jump = mean_after - mean_before
    noise = np.sqrt(sse_step / max(length - 2, 1)) * np.sqrt(1 / n_before + 1 / n_after)
    level = np.maximum(np.abs(mean_before + row_mean), np.abs(mean_after + row_mean))
    shifted = (
        (sse_step < sse_ratio * sse_line)
        & (np.abs(jump) > min_t * noise)
        & (np.abs(jump) >= min_relative * level)
    )
    ages[shifted] = (length - splits[best])[shifted]
    return ages


def _exhaustion_dates(
    this_month: np.ndarray,
    projected_cumulative: np.ndarray,
    budget: np.ndarray,
    as_of: np.datetime64,
) -> np.ndarray:
    """First day the month's cumulative spend reaches the budget: in the data or projected."""
    n, elapsed = this_month.shape
    result = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    rows = np.flatnonzero(np.isfinite(budget))  # only workloads with a budget
    if rows.size == 0:
        return result
    limit = budget[rows, None]
    spent = np.cumsum(this_month[rows], axis=1)
    crossed = (spent >= limit) & (spent > 0)
    already = crossed.any(axis=1)
    result[rows[already]] = as_of - DAY * (elapsed - 1 - np.argmax(crossed[already], axis=1))
    if projected_cumulative.shape[1]:
        ahead = spent[:, -1:] + projected_cumulative[rows]
        # a projection a billionth short of the budget reaches it (float rounding of a
        # constant path must not move the date by a day)
        crossing = (ahead >= limit * (1 - 1e-9)) & (ahead > 0)
        later = ~already & crossing.any(axis=1)
        result[rows[later]] = as_of + DAY * (np.argmax(crossing[later], axis=1) + 1)
    return result


def _fill_missing(spend: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Missing days take the median of the row's known days (0 if none is known)."""
    medians = np.zeros(spend.shape[0])
    rows = np.flatnonzero(known.any(axis=1))
    medians[rows] = np.nanmedian(np.where(known[rows], spend[rows], np.nan), axis=1)
    return np.where(known, spend, medians[:, None])


def _per_workload(values: ArrayLike | None, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, np.nan)
    array = np.asarray(values, dtype=np.float64)
    return np.broadcast_to(array, (n,)).copy() if array.ndim == 0 else array.reshape(n).copy()


__all__ = ["METHODS", "Forecast", "forecast"]

"""Detectors of the ways LLM spend runs away, each over every workload at once.

Each returns a `Detection`: the rows (workload indices) it flags, the money at stake for
each, the evidence (numbers a message can quote) and, where it has one, when it started.
Thresholds are scalars or `(W,)` arrays (per-workload overrides). Percentages are in percent.

- `retry_storm`: hourly attempts (invocations + throttles) surge against the same hour of
  previous days while the share of errors and throttles jumps; judged on each hour alone, so
  it fires on the first hour that shows it.
- `token_growth`: tokens per request rising week after week (sustained, not one day).
- `fan_out_growth`: LLM calls per upstream request up against the weeks before.
- `unit_cost_drift`: spend up and cost per token up (spend growing faster than usage).
- `idle_gpu`: provisioned GPU hours under a utilisation threshold, priced.
- `estimate_drift`: token-based estimate vs billed cost over the days billing covers.
- `spend_anomalies`: `Anomalies` of the latest day or hour as a `Detection`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict

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
from llmgov.economics._numeric import ratio as ratio_of
from llmgov.economics.anomaly import Anomalies
from llmgov.economics.series import HOUR, DailyArrays, GpuArrays, HourlyArrays

HOURS_PER_MONTH = 730.0
DAYS_PER_MONTH = 30.0


class DetectionRecord(TypedDict):
    """One flagged workload of a `Detection`, in plain Python values (see `records`)."""

    row: int
    money_at_stake: float
    workload_id: NotRequired[Any]  # the caller's label: whatever `workload_ids` holds
    evidence: dict[str, float]
    since: NotRequired[str]


@dataclass(frozen=True, eq=False)
class Detection:
    """What one detector found.

    - `kind`: the finding kind (`retry_storm`, `token_growth`, ...).
    - `workloads`: `(k,)` int64 row indices into the input arrays, ascending.
    - `money_at_stake`: `(k,)` float64 money (currency of the input), >= 0; each detector's
      docstring says what it measures (usually per month if nothing changes).
    - `evidence`: name -> `(k,)` float64 array of numbers behind the finding.
    - `since`: `(k,)` datetime64 when the condition started, or None when not applicable.
    """

    kind: str
    workloads: NDArray[np.int64]
    money_at_stake: FloatArray
    evidence: dict[str, FloatArray] = field(default_factory=dict)
    since: TimeArray | None = None

    def __len__(self) -> int:
        return int(self.workloads.size)

    @classmethod
    def empty(cls, kind: str) -> Detection:
        """Nothing found (or nothing to judge: too little data)."""
        return cls(kind, np.zeros(0, dtype=np.int64), np.zeros(0), {})

    def records(self, workload_ids: ArrayLike | None = None) -> list[DetectionRecord]:
        """One plain dict per flagged workload (Python floats), for messages and JSON.

        With `workload_ids` (`(W,)`, e.g. `DailyArrays.workload_ids`), each record also
        carries `workload_id`.
        """
        rows: list[DetectionRecord] = []
        for i, row in enumerate(self.workloads.tolist()):
            money = float(self.money_at_stake[i])
            evidence = {name: float(values[i]) for name, values in self.evidence.items()}
            # keys in the order messages and JSON have always shown them
            if workload_ids is None:
                record: DetectionRecord = {
                    "row": row,
                    "money_at_stake": money,
                    "evidence": evidence,
                }
            else:
                record = {
                    "row": row,
                    "money_at_stake": money,
                    "workload_id": np.asarray(workload_ids)[row].item(),
                    "evidence": evidence,
                }
            if self.since is not None:
                record["since"] = str(self.since[i])
            rows.append(record)
        return rows


def _flagged(
    kind: str,
    mask: BoolArray,
    money: ArrayLike,
    evidence: Mapping[str, ArrayLike],
    since: TimeArray | None = None,
) -> Detection:
    rows = np.flatnonzero(mask)
    return Detection(
        kind=kind,
        workloads=rows.astype(np.int64),
        money_at_stake=np.maximum(np.asarray(money, dtype=float)[rows], 0.0),
        evidence={name: np.asarray(values, dtype=float)[rows] for name, values in evidence.items()},
        since=None if since is None else since[rows],
    )


def _tail(daily: DailyArrays, days: int) -> DailyArrays:
    """The last `days` columns (views), so sums like tokens touch only what is needed."""
    return daily.select(slice(None), slice(max(daily.n_days - days, 0), daily.n_days))


def _threshold(value: Threshold, n: int) -> FloatArray:
    """A scalar or `(W,)` threshold as a `(W,)` float array."""
    return np.broadcast_to(np.asarray(value, dtype=np.float64), (n,))


def retry_storm(
    hourly: HourlyArrays,
    *,
    ratio: Threshold = 3.0,
    error_share: Threshold = 0.2,
    min_excess_requests: Threshold = 50.0,
    min_amount: Threshold = 2.0,
    baseline_days: int = 7,
    lookback_hours: int = 24,
    horizon_hours: float = 24.0,
) -> Detection:
    """Retry storms in the latest hour.

    An hour is a storm hour when its attempts (invocations + throttles) are at least `ratio`
    x the median of the same hour on up to `baseline_days` previous days, exceed it by at
    least `min_excess_requests`, and the share of attempts that errored or were throttled is
    at least `error_share` and at least twice its baseline. A workload is flagged when its
    latest hour is a storm hour; `since` is the first hour of the unbroken run of storm hours.

    Money at stake: the excess cost of the storm so far (cost above the same-hour baseline)
    plus `horizon_hours` more hours at the latest hour's excess; flagged only from `min_amount`.

    Evidence: `requests_per_hour`, `baseline_requests_per_hour`, `surge_ratio`,
    `failure_share_pct`, `baseline_failure_share_pct`, `excess_cost_per_hour`, `hours`.
    """
    n, n_hours = hourly.cost.shape
    thresholds = (
        _threshold(ratio, n),
        _threshold(error_share, n),
        _threshold(min_excess_requests, n),
    )
    if n_hours <= 24:  # no earlier day to compare with
        return Detection.empty("retry_storm")

    def storm_hours(
        rows: IndexArray | None, evaluated: IndexArray
    ) -> tuple[BoolArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
        """Storm condition and evidence for `rows` (None: all) at the `evaluated` hours."""
        depth = min(baseline_days, int(evaluated[0]) // 24)
        # (E, 1 + depth): each evaluated hour, then the same hour 1..depth days earlier
        lags = evaluated[:, None] - 24 * np.arange(depth + 1)[None, :]

        def gather(values: FloatArray) -> FloatArray:  # only the columns needed, first
            gathered: FloatArray = (values if rows is None else values[rows])[:, lags]
            return gathered

        throttles = gather(hourly.throttles)
        attempts = gather(hourly.requests) + throttles
        failures = gather(hourly.errors) + throttles
        cost = gather(hourly.cost)
        now, past = attempts[..., 0], attempts[..., 1:]
        baseline = median(past)
        baseline_share = ratio_of(failures[..., 1:].sum(axis=2), past.sum(axis=2))
        share = ratio_of(failures[..., 0], now)
        surge, share_limit, excess_limit = (
            (t if rows is None else t[rows])[:, None] for t in thresholds
        )
        storm = (
            (now >= surge * np.maximum(baseline, 1.0))
            & (now - baseline >= excess_limit)
            & (share >= share_limit)
            & (share >= 2 * baseline_share)
        )
        excess_cost = np.maximum(cost[..., 0] - median(cost[..., 1:]), 0.0)
        return storm, now, baseline, share, baseline_share, excess_cost

    # Judge the latest hour for everyone; look back over the run only where it is a storm.
    latest = storm_hours(None, np.array([n_hours - 1]))[0][:, 0]
    rows = np.flatnonzero(latest)
    lookback = min(lookback_hours, n_hours - 24)
    evaluated = np.arange(n_hours - lookback, n_hours)
    storm, now, baseline, share, baseline_share, excess_cost = storm_hours(rows, evaluated)
    run = np.cumprod(storm[:, ::-1], axis=1).sum(axis=1)  # trailing storm hours
    in_run = np.arange(lookback)[None, :] >= lookback - run[:, None]
    money_rows = (excess_cost * in_run).sum(axis=1) + horizon_hours * excess_cost[:, -1]

    def full(values: ArrayLike) -> FloatArray:
        out = np.zeros(n)
        out[rows] = values
        return out

    money = full(money_rows)
    flagged = latest & (money >= _threshold(min_amount, n))
    since = hourly.hours[-1] - HOUR * np.maximum(full(run).astype(np.int64) - 1, 0)
    evidence = {
        "requests_per_hour": full(now[:, -1]),
        "baseline_requests_per_hour": full(baseline[:, -1]),
        "surge_ratio": full(ratio_of(now[:, -1], np.maximum(baseline[:, -1], 1.0))),
        "failure_share_pct": full(100 * share[:, -1]),
        "baseline_failure_share_pct": full(100 * baseline_share[:, -1]),
        "excess_cost_per_hour": full(excess_cost[:, -1]),
        "hours": full(run),
    }
    return _flagged("retry_storm", flagged, money, evidence, since)


def _weekly_medians(numerator: FloatArray, denominator: FloatArray, weeks: int) -> FloatArray:
    """`(W, weeks)` median of the daily ratio in each of the last `weeks` 7-day blocks.

    Days without a denominator take their week's ratio of sums, so they do not pull the
    median either way; a week without any denominator reads 0.
    """
    n, n_days = numerator.shape
    top = numerator[:, n_days - 7 * weeks :].reshape(n, weeks, 7)
    bottom = denominator[:, n_days - 7 * weeks :].reshape(n, weeks, 7)
    weekly = ratio_of(top.sum(axis=2), bottom.sum(axis=2))
    daily = np.where(bottom > 0, ratio_of(top, bottom), weekly[..., None])
    return median(daily)


def token_growth(
    daily: DailyArrays,
    *,
    growth_pct: Threshold = 15.0,
    weeks: int = 4,
    step_tolerance_pct: float = 5.0,
    min_amount: Threshold = 2.0,
) -> Detection:
    """Sustained growth of tokens per request over the last `weeks` weeks (at least 3).

    The median tokens per request of each week must not fall by more than
    `step_tolerance_pct` from one week to the next, and the last week must be at least
    `growth_pct` above the first.

    Money at stake: the share of the last week's spend that the extra tokens cost
    (1 - first/last), per month (x 30 days) at the last week's daily spend.

    Evidence: `tokens_per_request_before`, `tokens_per_request_now`, `growth_pct`,
    `weeks`.
    """
    n, n_days = daily.cost.shape
    weeks = min(weeks, n_days // 7)
    if weeks < 3:
        return Detection.empty("token_growth")
    daily = _tail(daily, 7 * weeks)
    medians = _weekly_medians(daily.tokens, daily.requests, weeks)
    first, last = medians[:, 0], medians[:, -1]
    growth = ratio_of(last, first) - 1
    steps = ratio_of(medians[:, 1:], medians[:, :-1])
    steady = np.all(steps >= 1 - step_tolerance_pct / 100, axis=1)
    recent_daily_cost = daily.cost[:, -7:].sum(axis=1) / 7
    money = (1 - ratio_of(first, last)) * recent_daily_cost * DAYS_PER_MONTH
    flagged = (
        (first > 0)
        & steady
        & (growth >= _threshold(growth_pct, n) / 100)
        & (money >= _threshold(min_amount, n))
    )
    evidence = {
        "tokens_per_request_before": first,
        "tokens_per_request_now": last,
        "growth_pct": 100 * growth,
        "weeks": np.full(n, weeks),
    }
    return _flagged("token_growth", flagged, money, evidence)


def _window_medians(
    numerator: FloatArray, denominator: FloatArray, columns: slice
) -> tuple[FloatArray, IndexArray]:
    top, bottom = numerator[:, columns], denominator[:, columns]
    overall = ratio_of(top.sum(axis=1), bottom.sum(axis=1))
    daily = np.where(bottom > 0, ratio_of(top, bottom), overall[:, None])
    return median(daily), (bottom > 0).sum(axis=1)


def fan_out_growth(
    daily: DailyArrays,
    *,
    growth_pct: Threshold = 25.0,
    recent_days: int = 7,
    baseline_days: int = 21,
    min_amount: Threshold = 2.0,
) -> Detection:
    """LLM calls per upstream request: the median of the last `recent_days` against the
    median of the `baseline_days` before, for workloads with upstream requests on most days.

    Money at stake: the share of recent spend the extra calls cost (1 - before/now), per
    month at the recent daily spend.

    Evidence: `calls_per_request_before`, `calls_per_request_now`, `growth_pct`.
    """
    n, n_days = daily.cost.shape
    if n_days < recent_days + baseline_days:
        return Detection.empty("fan_out_growth")
    daily = _tail(daily, recent_days + baseline_days)
    n_days = recent_days + baseline_days
    recent = slice(n_days - recent_days, n_days)
    baseline = slice(n_days - recent_days - baseline_days, n_days - recent_days)
    now, now_days = _window_medians(daily.requests, daily.upstream_requests, recent)
    before, before_days = _window_medians(daily.requests, daily.upstream_requests, baseline)
    growth = ratio_of(now, before) - 1
    recent_daily_cost = daily.cost[:, recent].sum(axis=1) / recent_days
    money = (1 - ratio_of(before, now)) * recent_daily_cost * DAYS_PER_MONTH
    flagged = (
        (before > 0)
        & (2 * now_days > recent_days)
        & (2 * before_days > baseline_days)
        & (growth >= _threshold(growth_pct, n) / 100)
        & (money >= _threshold(min_amount, n))
    )
    evidence = {
        "calls_per_request_before": before,
        "calls_per_request_now": now,
        "growth_pct": 100 * growth,
    }
    return _flagged("fan_out_growth", flagged, money, evidence)


def unit_cost_drift(
    daily: DailyArrays,
    *,
    drift_pct: Threshold = 20.0,
    usage_flat_pct: Threshold | None = None,
    recent_days: int = 7,
    baseline_days: int = 21,
    min_amount: Threshold = 2.0,
) -> Detection:
    """Spend up while usage does not explain it: the last `recent_days` against the
    `baseline_days` before, per day. Flags when spend per day and cost per token are both up
    at least `drift_pct`; with `usage_flat_pct`, tokens per day must also have moved less
    than that (the strict "usage flat" reading).

    Money at stake: the rise in cost per token on the recent tokens, per month.

    Evidence: `spend_growth_pct`, `usage_growth_pct`, `requests_growth_pct`,
    `cost_per_1k_tokens_before`, `cost_per_1k_tokens_now`.
    """
    n, n_days = daily.cost.shape
    if n_days < recent_days + baseline_days:
        return Detection.empty("unit_cost_drift")
    daily = _tail(daily, recent_days + baseline_days)
    n_days = recent_days + baseline_days
    recent = slice(n_days - recent_days, n_days)
    baseline = slice(n_days - recent_days - baseline_days, n_days - recent_days)
    tokens = daily.tokens

    def per_day(values: FloatArray, columns: slice, length: int) -> FloatArray:
        total: FloatArray = values[:, columns].sum(axis=1)
        return total / length

    cost_now, cost_before = (
        per_day(daily.cost, recent, recent_days),
        per_day(daily.cost, baseline, baseline_days),
    )
    tokens_now, tokens_before = (
        per_day(tokens, recent, recent_days),
        per_day(tokens, baseline, baseline_days),
    )
    requests_growth = (
        ratio_of(
            per_day(daily.requests, recent, recent_days),
            per_day(daily.requests, baseline, baseline_days),
        )
        - 1
    )
    unit_now, unit_before = ratio_of(cost_now, tokens_now), ratio_of(cost_before, tokens_before)
    spend_growth = ratio_of(cost_now, cost_before) - 1
    usage_growth = ratio_of(tokens_now, tokens_before) - 1
    unit_growth = ratio_of(unit_now, unit_before) - 1
    money = (unit_now - unit_before) * tokens_now * DAYS_PER_MONTH
    limit = _threshold(drift_pct, n) / 100
    flagged = (
        (cost_before > 0)
        & (tokens_before > 0)
        & (tokens_now > 0)
        & (spend_growth >= limit)
        & (unit_growth >= limit)
        & (money >= _threshold(min_amount, n))
    )
    if usage_flat_pct is not None:
        flagged &= np.abs(usage_growth) * 100 < _threshold(usage_flat_pct, n)
    evidence = {
        "spend_growth_pct": 100 * spend_growth,
        "usage_growth_pct": 100 * usage_growth,
        "requests_growth_pct": 100 * requests_growth,
        "cost_per_1k_tokens_before": 1000 * unit_before,
        "cost_per_1k_tokens_now": 1000 * unit_now,
    }
    return _flagged("unit_cost_drift", flagged, money, evidence)


def idle_gpu(
    gpu: GpuArrays,
    *,
    util_pct: Threshold = 20.0,
    min_hours: Threshold = 24.0,
    window_hours: int = 168,
    min_amount: Threshold = 2.0,
) -> Detection:
    """Provisioned GPU hours under `util_pct` utilisation in the last `window_hours`.

    Flags workloads with at least `min_hours` idle hours (hours without a utilisation
    reading are not judged). Money at stake: what the idle
    hours cost, per month (x 730 / hours in the window).

    Evidence: `idle_hours`, `provisioned_hours` (hours with instances), `instance_hours`,
    `mean_utilisation_pct` (GPU-weighted), `idle_cost` (in the window), `cost` (all
    provisioned hours in the window).
    """
    n, n_hours = gpu.instance_hours.shape
    window = min(window_hours, n_hours)
    fleets = gpu.fleet_rows
    if window == 0 or fleets.size == 0:
        return Detection.empty("idle_gpu")
    columns = slice(n_hours - window, n_hours)
    instances = gpu.instance_hours[fleets, columns]
    utilisation = gpu.utilisation_pct[fleets, columns]
    measured = gpu.measured[fleets, columns]
    cost = gpu.cost[fleets, columns]
    provisioned = instances > 0
    idle = provisioned & measured & (utilisation < _threshold(util_pct, n)[fleets, None])
    gpus = np.where(measured, gpu.gpu_hours[fleets, columns], 0.0)  # GPUs with a reading

    def full(values: ArrayLike) -> FloatArray:
        out = np.zeros(n)
        out[fleets] = values
        return out

    idle_hours = full(np.count_nonzero(idle, axis=1))
    idle_cost = full(np.where(idle, cost, 0.0).sum(axis=1))
    money = idle_cost * HOURS_PER_MONTH / window
    flagged = (idle_hours >= _threshold(min_hours, n)) & (money >= _threshold(min_amount, n))
    evidence = {
        "idle_hours": idle_hours,
        "provisioned_hours": full(np.count_nonzero(provisioned, axis=1)),
        "instance_hours": full(instances.sum(axis=1)),
        "mean_utilisation_pct": full(
            ratio_of(np.einsum("ij,ij->i", utilisation, gpus), gpus.sum(axis=1))
        ),
        "idle_cost": idle_cost,
        "cost": full(cost.sum(axis=1)),
    }
    return _flagged("idle_gpu", flagged, money, evidence)


def estimate_drift(
    daily: DailyArrays,
    *,
    drift_pct: Threshold = 20.0,
    window_days: int = 14,
    min_days: int = 3,
    min_amount: Threshold = 20.0,
) -> Detection:
    """Token-based estimate against billed cost, over the days of the last `window_days`
    that billing covers (and that have an estimate). Flags a gap of at least `drift_pct`
    either way.

    Money at stake: the absolute gap, per month (x 30 / days compared).

    Evidence: `billed`, `estimated`, `drift_pct` ((estimated - billed) / billed, negative
    when the estimate is too low), `days`.
    """
    n, n_days = daily.cost.shape
    columns = slice(max(n_days - window_days, 0), n_days)
    covered = daily.has_billed[:, columns] & (daily.estimated_cost[:, columns] > 0)
    billed = (daily.billed_cost[:, columns] * covered).sum(axis=1)
    estimated = (daily.estimated_cost[:, columns] * covered).sum(axis=1)
    compared = covered.sum(axis=1)
    drift = ratio_of(estimated, billed) - 1
    money = ratio_of(np.abs(billed - estimated) * DAYS_PER_MONTH, compared)
    flagged = (
        (compared >= min_days)
        & (billed > 0)
        & (np.abs(drift) >= _threshold(drift_pct, n) / 100)
        & (money >= _threshold(min_amount, n))
    )
    evidence = {
        "billed": billed,
        "estimated": estimated,
        "drift_pct": 100 * drift,
        "days": compared,
    }
    return _flagged("estimate_drift", flagged, money, evidence)


def spend_anomalies(anomalies: Anomalies, kind: str = "spend_anomaly") -> Detection:
    """The latest period of `anomalies` as a detection.

    Money at stake: the excess over the expected spend in that period.

    Evidence: `actual`, `expected`, `excess`, `score` (robust z).
    """
    n = anomalies.actual.shape[0]
    if anomalies.actual.shape[1] == 0:
        return Detection.empty(kind)
    evidence = {
        "actual": anomalies.actual[:, -1],
        "expected": anomalies.expected[:, -1],
        "excess": anomalies.excess[:, -1],
        "score": anomalies.score[:, -1],
    }
    since = np.broadcast_to(anomalies.times[-1], (n,))
    return _flagged(kind, anomalies.latest, anomalies.excess[:, -1], evidence, since)


__all__ = [
    "Detection",
    "DetectionRecord",
    "estimate_drift",
    "fan_out_growth",
    "idle_gpu",
    "retry_storm",
    "spend_anomalies",
    "token_growth",
    "unit_cost_drift",
]

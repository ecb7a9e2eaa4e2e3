"""One call for the whole analysis of every workload: `analyse(daily, hourly, budgets, as_of)`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, TypeVar

import numpy as np

from llmgov.economics.anomaly import Anomalies, daily_anomalies, hourly_anomalies
from llmgov.economics.decompose import Decomposition, decompose_periods
from llmgov.economics.detectors import (
    Detection,
    estimate_drift,
    fan_out_growth,
    idle_gpu,
    retry_storm,
    spend_anomalies,
    token_growth,
    unit_cost_drift,
)
from llmgov.economics.forecast import Forecast, forecast
from llmgov.economics.reconcile import Reconciliation, reconcile
from llmgov.economics.series import DAY, DailyArrays, DayLike, GpuArrays, HourlyArrays
from llmgov.economics.unit import UnitCosts, unit_costs

DETECTION_KINDS = (
    "spend_anomaly",
    "spend_anomaly_hourly",
    "retry_storm",
    "token_growth",
    "fan_out_growth",
    "unit_cost_drift",
    "idle_gpu",
    "estimate_drift",
)
"""Keys of `Analysis.detections`. Both spend anomaly keys are finding kind `spend_anomaly`."""


Number = float | np.ndarray  # a threshold: one value, or one per workload `(W,)`


@dataclass(frozen=True, eq=False)
class Thresholds:
    """Detection thresholds. Every numeric field is a scalar or a `(W,)` array (per-workload
    overrides). Names and units match `governance.thresholds.Thresholds` where they overlap;
    money is in the currency of the arrays, percentages in percent."""

    interval_z: float = 1.645  # half-width of forecast ranges, in sigmas (90%)
    anomaly_z: Number = 3.5  # robust z-score (median/MAD) for a spend anomaly
    anomaly_min_amount: Number = 10.0  # excess over the expected day (or hour), money
    anomaly_min_ratio: Number = 0.5  # excess over the expected value, relative
    retry_storm_ratio: Number = 3.0  # hourly attempts vs the same hour on previous days
    retry_storm_error_share: Number = 0.2  # share of attempts that errored or were throttled
    retry_storm_min_requests: Number = 50.0  # attempts above the baseline in the hour
    token_growth_pct: Number = 15.0  # tokens per request, growth over 4 weeks
    fan_out_growth_pct: Number = 25.0  # LLM calls per upstream request, last week vs 3 before
    unit_cost_drift_pct: Number = 20.0  # spend and cost per token both up this much
    usage_flat_pct: Number | None = None  # if set, unit-cost drift also needs usage to move less
    idle_gpu_util_pct: Number = 20.0  # an hour under this GPU utilisation is idle
    idle_gpu_min_hours: Number = 24.0  # idle hours in the last week before it is a finding
    estimate_drift_pct: Number = 20.0  # token estimate vs billed cost
    estimate_drift_min_amount: Number = 20.0  # per month
    min_amount: Number = 2.0  # the least money at stake worth a finding (other detectors)
    change_days: int = 7  # "why spend changed": the last N days vs the N days before
    unit_window_days: int = 30  # unit costs over the last N days

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Thresholds:
        """Thresholds from any mapping (e.g. `dataclasses.asdict` of governance's): known
        names are taken, Decimals become floats, the rest is ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: _plain(v) for k, v in values.items() if k in known})

    @classmethod
    def per_workload(cls, rows: Sequence[Mapping[str, Any]]) -> Thresholds:
        """Thresholds for W workloads from one mapping per workload (row order): a field the
        rows agree on stays a scalar, others become `(W,)` arrays; missing names default."""
        each = [cls.from_mapping(row) for row in rows]
        merged: dict[str, Any] = {}
        for spec in dataclasses.fields(cls):
            values = [getattr(t, spec.name) for t in each]
            if not values or all(_same(v, values[0]) for v in values):
                merged[spec.name] = values[0] if values else getattr(cls(), spec.name)
            else:  # None (no limit) reads as infinity once the rows disagree
                merged[spec.name] = np.array(
                    [np.inf if v is None else v for v in values], dtype=float
                )
        return cls(**merged)


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def _same(a: Any, b: Any) -> bool:
    return (
        bool(np.all(np.asarray(a) == np.asarray(b))) if a is not None and b is not None else a is b
    )


@dataclass(frozen=True, eq=False)
class Analysis:
    """Everything the core says about W workloads as of one day.

    - `as_of`: datetime64[D]; `workload_ids`: `(W,)` from the input, or None.
    - `forecast`: month end, 30/90 days, ranges, exhaustion dates (`Forecast`).
    - `daily_anomalies`: the `as_of` day scored (`Anomalies`, T = 1).
    - `hourly_anomalies`: the latest hour scored, or None without hourly data.
    - `change`: why spend changed, the last `change_days` vs the ones before
      (`Decomposition`); `change_periods`: `((start, end), (start, end))` inclusive days.
    - `unit`: unit costs over the last `unit_window_days` (`UnitCosts`).
    - `detections`: `DETECTION_KINDS` -> `Detection`.
    - `reconciliation`: how unbilled days were estimated (`Reconciliation`: the spend used,
      and each workload's billed / estimated factor).
    """

    as_of: np.datetime64
    workload_ids: np.ndarray | None
    forecast: Forecast
    daily_anomalies: Anomalies
    hourly_anomalies: Anomalies | None
    change: Decomposition
    change_periods: tuple[tuple[np.datetime64, np.datetime64], tuple[np.datetime64, np.datetime64]]
    unit: UnitCosts
    detections: dict[str, Detection]
    reconciliation: Reconciliation

    def flagged(self) -> list[tuple[str, int, float]]:
        """(kind, row, money at stake) for every detection, by money at stake, largest first."""
        rows = [
            (kind, int(row), float(money))
            for kind, found in self.detections.items()
            for row, money in zip(found.workloads, found.money_at_stake, strict=True)
        ]
        return sorted(rows, key=lambda item: -item[2])


def analyse(
    daily: DailyArrays,
    hourly: HourlyArrays | None = None,
    budgets: np.ndarray | float | None = None,
    as_of: DayLike | None = None,
    thresholds: Thresholds | None = None,
    *,
    gpu: GpuArrays | None = None,
) -> Analysis:
    """Analyse every workload in one vectorised pass.

    - `daily`: workloads x days (`DailyArrays`); columns after `as_of` are ignored.
    - `hourly`: workloads x hours (`HourlyArrays`, same rows), or None; hours after the end
      of the `as_of` day are ignored.
    - `budgets`: `(W,)` monthly budgets (NaN: none) or a scalar, or None.
    - `as_of`: the day the answer is for (default: the last day of `daily`). Treat it as a
      complete day: pass yesterday for a projection made during the day.
    - `thresholds`: `Thresholds` (scalars or per-workload arrays).
    - `gpu`: self-hosted fleets (`GpuArrays`, same rows), or None.
    """
    t = thresholds or Thresholds()
    if as_of is not None:
        daily = daily.through(as_of)
    as_of_day = daily.days[-1]
    if hourly is not None:
        hourly = _hours_through(hourly, as_of_day)
    if gpu is not None:
        gpu = _hours_through(gpu, as_of_day)
    reconciliation = reconcile(daily)
    daily = replace(daily, cost=reconciliation.cost)  # unbilled days: calibrated estimates

    projection = forecast(daily.cost, daily.days, budgets=budgets, z=t.interval_z)
    day_scores = daily_anomalies(
        daily.cost,
        daily.days,
        history_days=projection.history_days,
        z=t.anomaly_z,
        min_amount=t.anomaly_min_amount,
        min_ratio=t.anomaly_min_ratio,
    )

    hour_scores = None
    detections: dict[str, Detection] = {"spend_anomaly": spend_anomalies(day_scores)}
    if hourly is not None:
        hour_scores = hourly_anomalies(
            hourly.cost,
            hourly.hours,
            factors=day_scores.weekday_factors,
            z=t.anomaly_z,
            min_amount=t.anomaly_min_amount,
            min_ratio=t.anomaly_min_ratio,
        )
        detections["spend_anomaly_hourly"] = spend_anomalies(hour_scores)
        detections["retry_storm"] = retry_storm(
            hourly,
            ratio=t.retry_storm_ratio,
            error_share=t.retry_storm_error_share,
            min_excess_requests=t.retry_storm_min_requests,
            min_amount=t.min_amount,
        )
    else:
        detections["spend_anomaly_hourly"] = Detection.empty("spend_anomaly_hourly")
        detections["retry_storm"] = Detection.empty("retry_storm")

    detections["token_growth"] = token_growth(
        daily, growth_pct=t.token_growth_pct, min_amount=t.min_amount
    )
    detections["fan_out_growth"] = fan_out_growth(
        daily, growth_pct=t.fan_out_growth_pct, min_amount=t.min_amount
    )
    detections["unit_cost_drift"] = unit_cost_drift(
        daily,
        drift_pct=t.unit_cost_drift_pct,
        usage_flat_pct=t.usage_flat_pct,
        min_amount=t.min_amount,
    )
    if gpu is not None:
        detections["idle_gpu"] = idle_gpu(
            gpu,
            util_pct=t.idle_gpu_util_pct,
            min_hours=t.idle_gpu_min_hours,
            min_amount=t.min_amount,
        )
    else:
        detections["idle_gpu"] = Detection.empty("idle_gpu")
    detections["estimate_drift"] = estimate_drift(
        daily, drift_pct=t.estimate_drift_pct, min_amount=t.estimate_drift_min_amount
    )

    span = min(t.change_days, daily.n_days // 2)
    last = daily.select(slice(None), slice(daily.n_days - 2 * span, daily.n_days))
    change = decompose_periods(
        last.cost, last.requests, last.errors, last.tokens, slice(0, span), slice(span, None)
    )
    periods = (
        (as_of_day - DAY * (2 * span - 1), as_of_day - DAY * span),
        (as_of_day - DAY * (span - 1), as_of_day),
    )
    unit = unit_costs(daily, gpu, window_days=t.unit_window_days)
    return Analysis(
        as_of=as_of_day,
        workload_ids=daily.workload_ids,
        forecast=projection,
        daily_anomalies=day_scores,
        hourly_anomalies=hour_scores,
        change=change,
        change_periods=periods,
        unit=unit,
        detections={kind: detections[kind] for kind in DETECTION_KINDS},
        reconciliation=reconciliation,
    )


ArraysT = TypeVar("ArraysT", HourlyArrays, GpuArrays)


def _hours_through(arrays: ArraysT, as_of_day: np.datetime64) -> ArraysT:
    """`HourlyArrays` or `GpuArrays` without the hours after the end of `as_of_day`."""
    end = np.searchsorted(arrays.hours, (as_of_day + DAY).astype("datetime64[h]"))
    return arrays if end == arrays.hours.size else arrays.select(slice(None), slice(0, end))


__all__ = ["DETECTION_KINDS", "Analysis", "Thresholds", "analyse"]

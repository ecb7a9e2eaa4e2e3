"""The numpy projection core: arrays in, arrays and dataclasses out.

Imports numpy and the standard library only (no database, no Slack, no AWS). Every function
works on whole `[workloads x time]` arrays that share one time axis; row `i` is the same
workload in every array. Money is float in the caller's currency; convert to `Decimal` at
the edges.

Start with `analyse`:

    from llmgov.economics import DailyArrays, HourlyArrays, analyse
    result = analyse(daily, hourly, budgets, as_of)         # one vectorised pass
    result.forecast.month_end, result.forecast.exhaustion_date
    for kind, found in result.detections.items(): ...       # retry_storm, token_growth, ...

The parts are usable alone:

- inputs: `DailyArrays` (W x days), `HourlyArrays` (W x hours), `GpuArrays` (W x hours);
- `forecast` -> `Forecast`: month end, next 30/90 days with ranges, daily path, budget
  exhaustion dates;
- `daily_anomalies`, `hourly_anomalies` -> `Anomalies` (robust, weekday-aware);
- `decompose`, `decompose_periods` -> `Decomposition` (volume, retries, intensity,
  price/mix; LMDI, effects add up to the change);
- detectors -> `Detection`: `retry_storm`, `token_growth`, `fan_out_growth`,
  `unit_cost_drift`, `idle_gpu`, `estimate_drift`, `spend_anomalies`;
- `reconcile` -> `Reconciliation`: unbilled days from the estimate, corrected by how far
  estimates have been from the bill (what `analyse` uses as spend);
- `unit_costs` -> `UnitCosts`, `traffic_shape` -> `TrafficShape`,
  `self_hosted_cost_per_mtok` (reservation-based);
- `break_even` -> `BreakEven`, `people_monthly_cost`, `bedrock_monthly_cost`,
  `bedrock_price_per_mtok` (cache tokens and the Bedrock tier);
- `sizing`: the open model of comparable quality, throughput per GPU and size class from the
  bundled published benchmarks (`estimate_throughput`), memory fit and `size_fleet`.
"""

from llmgov.economics.analysis import DETECTION_KINDS, Analysis, Thresholds, analyse
from llmgov.economics.anomaly import Anomalies, daily_anomalies, hourly_anomalies, weekday_factors
from llmgov.economics.breakeven import (
    BreakEven,
    bedrock_monthly_cost,
    bedrock_price_per_mtok,
    break_even,
    instances_needed,
    people_monthly_cost,
)
from llmgov.economics.decompose import (
    DECOMPOSITION_METHODS,
    EFFECTS,
    Decomposition,
    PeriodTotals,
    decompose,
    decompose_periods,
)
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
from llmgov.economics.forecast import METHODS, Forecast, forecast
from llmgov.economics.reconcile import Reconciliation, reconcile, reconciled
from llmgov.economics.series import DailyArrays, GpuArrays, HourlyArrays
from llmgov.economics.sizing import (
    INSTANCE_TYPES,
    ThroughputEstimate,
    ThroughputUnavailable,
    estimate_throughput,
    load_anchors,
    size_fleet,
)
from llmgov.economics.unit import (
    TrafficShape,
    UnitCosts,
    self_hosted_cost_per_mtok,
    traffic_shape,
    unit_costs,
)

__all__ = [
    "DECOMPOSITION_METHODS",
    "DETECTION_KINDS",
    "EFFECTS",
    "INSTANCE_TYPES",
    "METHODS",
    "Analysis",
    "Anomalies",
    "BreakEven",
    "DailyArrays",
    "Decomposition",
    "Detection",
    "Forecast",
    "GpuArrays",
    "HourlyArrays",
    "PeriodTotals",
    "Reconciliation",
    "Thresholds",
    "ThroughputEstimate",
    "ThroughputUnavailable",
    "TrafficShape",
    "UnitCosts",
    "analyse",
    "bedrock_monthly_cost",
    "bedrock_price_per_mtok",
    "break_even",
    "daily_anomalies",
    "decompose",
    "decompose_periods",
    "estimate_drift",
    "estimate_throughput",
    "fan_out_growth",
    "forecast",
    "hourly_anomalies",
    "idle_gpu",
    "instances_needed",
    "load_anchors",
    "people_monthly_cost",
    "reconcile",
    "reconciled",
    "retry_storm",
    "self_hosted_cost_per_mtok",
    "size_fleet",
    "spend_anomalies",
    "token_growth",
    "traffic_shape",
    "unit_cost_drift",
    "unit_costs",
    "weekday_factors",
]

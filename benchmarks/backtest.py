"""Rolling-origin backtests of the projection core, on series built from real LLM traces.

    python benchmarks/backtest.py [--data ../shared/data] [--seed 7] [--rounds 4]
    python benchmarks/backtest.py --only ranges [--range-series 100]   # section 4 alone

Series. The real request traces in `DATA/traces/` (Azure LLM inference, code and
conversation; Mooncake conversation: ~1 hour each, per request: time, input and output
tokens) give the noise: a workload's traffic is the superposition of a few randomly
time-shifted copies of one trace, cut into as many equal bins as the series has days (or
hours), so each bin holds real request counts and real token lengths with their real
burstiness. Those counts are scaled to a daily spend between about $10 and $5,000 at Bedrock
token prices, then shaped: weekly seasonality (quiet weekends), trends (exponential or
linear, up or down), level shifts, and injected incidents of every detector's kind.

1. Month-end projection: for every day of the last three full months as the origin (the
   day "as of"), project the month's total with data up to that day only, and compare with
   the actual total: mean absolute percentage error (MAPE) of the core against the naive
   run rate (month to date / days elapsed x days in the month), per kind of series.
   Floors: at least 25% lower MAPE than the run rate on trending series, no worse on flat.
2. Detectors: populations where some workloads carry one incident each (and hard
   negatives: old level shifts, legitimate traffic spikes, fleets idle for a few hours),
   analysed as of their last day or hour with `analyse`; precision and recall per detector.
   A retry storm is injected in the last hour only: found means found in its first hour.
   Floors: precision and recall at least 0.9 for every detector.
3. Lasting level shifts: series whose spend steps up (x1.6-3) or down (x0.3-0.6) and
   stays there, and the same series without a step, scored by the daily anomaly detector
   from the step day on: how often the step day alerts, how many alarms a workload gets in
   the days after (the new level is not an anomaly), and the recall of a spike 7-27 days
   after the step. Floors: a step up alerts on its day for at least 80% of workloads; from
   day 7 on, no more alarms than without a step (+0.05 a workload); spike recall at least
   0.95 after a step as without one.
4. Month-end ranges on generated shapes (no trace data): flat, trending (linear or
   exponential), AR(1) noise with rho = 0.9, a random walk, and held-out growing series,
   with 91 days of history (what the checks pass), through `economics.forecast` called as
   `governance.checks` calls it. For every day of a month but the last as the origin, the
   90% range of the month's total (spent + projected rest): how often it holds the actual
   total, and the MAPE of the projection against an additive Holt-Winters (weekly season,
   parameters chosen per series by in-sample error) and the run rate. Floors: coverage 88-92%
   on each of the four shapes; MAPE on growing series no worse than Holt-Winters.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llmgov.economics import (  # noqa: E402
    DETECTION_KINDS,
    DailyArrays,
    GpuArrays,
    HourlyArrays,
    Thresholds,
    analyse,
    daily_anomalies,
    forecast,
)

# Bedrock list prices per token, input / output (e.g. Llama 3.1 8B, Claude 3 Haiku, Nova Pro).
MODEL_PRICES = np.array([[0.22e-6, 0.22e-6], [0.25e-6, 1.25e-6], [0.8e-6, 3.2e-6]])
FINE_BINS = 28_800  # trace histogram resolution before cutting into days or hours


# -- traces ------------------------------------------------------------------------------


@dataclass
class Trace:
    name: str
    seconds: np.ndarray  # request arrival, from 0
    input_tokens: np.ndarray
    output_tokens: np.ndarray

    def histogram(self, bins: int) -> np.ndarray:
        """`(3, bins)`: requests, input tokens, output tokens in equal time bins."""
        span = self.seconds.max() + 1e-9
        index = np.minimum((self.seconds / span * bins).astype(int), bins - 1)
        return np.stack(
            [
                np.bincount(index, minlength=bins).astype(float),
                np.bincount(index, weights=self.input_tokens, minlength=bins),
                np.bincount(index, weights=self.output_tokens, minlength=bins),
            ]
        )


def load_traces(data: Path) -> list[Trace]:
    traces = []
    for name in ("AzureLLMInferenceTrace_code.csv", "AzureLLMInferenceTrace_conv.csv"):
        with open(data / "traces" / name, newline="") as handle:
            rows = list(csv.DictReader(handle))
        stamps = np.array([datetime.fromisoformat(r["TIMESTAMP"][:26]).timestamp() for r in rows])
        traces.append(
            Trace(
                name.removeprefix("AzureLLMInferenceTrace_").removesuffix(".csv"),
                stamps - stamps.min(),
                np.array([float(r["ContextTokens"]) for r in rows]),
                np.array([float(r["GeneratedTokens"]) for r in rows]),
            )
        )
    with gzip.open(data / "traces" / "mooncake_conversation_trace.jsonl.gz", "rt") as handle:
        records = [json.loads(line) for line in handle]
    traces.append(
        Trace(
            "mooncake",
            np.array([r["timestamp"] / 1000 for r in records], dtype=float),
            np.array([r["input_length"] for r in records], dtype=float),
            np.array([r["output_length"] for r in records], dtype=float),
        )
    )
    return traces


class TraceNoise:
    """Real traffic cut into `bins` periods: the sum of `streams` randomly time-shifted
    (circularly) copies of one trace, i.e. a workload with `streams` times the trace's users."""

    def __init__(self, traces: list[Trace]) -> None:
        # cumulative histograms over two laps, so a shifted window never wraps
        self.laps = [
            np.concatenate(
                [np.zeros((3, 1)), np.cumsum(np.tile(t.histogram(FINE_BINS), 2), axis=1)], axis=1
            )
            for t in traces
        ]

    def sample(
        self, rng: np.random.Generator, n: int, bins: int, streams=(16, 32, 64, 128)
    ) -> np.ndarray:
        """`(3, n, bins)` requests, input and output tokens, each row scaled to a mean of one
        request per bin (tokens keep their real size per request)."""
        per_bin = FINE_BINS // bins
        edges = per_bin * np.arange(bins + 1)
        out = np.zeros((3, n, bins))
        count = rng.choice(streams, size=n)
        which = rng.integers(0, len(self.laps), size=n)
        for i in range(n):
            shifts = rng.integers(0, FINE_BINS, count[i])
            at = shifts[:, None] + edges[None, :]  # (streams, bins + 1)
            windows = self.laps[which[i]][:, at]  # (3, streams, bins + 1)
            out[:, i] = np.diff(windows, axis=2).sum(axis=1)
        mean = out[0].mean(axis=1, keepdims=True)
        return out / np.maximum(mean, 1e-9)[None]


# -- shaped series --------------------------------------------------------------------------


def weekday_of(days: np.ndarray) -> np.ndarray:
    return (days.astype("datetime64[D]").astype(np.int64) + 3) % 7


def weekly_profile(rng, n: int, days: np.ndarray) -> np.ndarray:
    """`(n, D)` multiplier: quiet weekends (factor 0.35-1) for 70% of workloads."""
    weekend = np.where(rng.random(n) < 0.7, rng.uniform(0.35, 1.0, n), 1.0)
    return np.where(weekday_of(days)[None, :] >= 5, weekend[:, None], 1.0)


def trend_profile(rng, n: int, n_days: int, kind: str) -> np.ndarray:
    t = np.arange(n_days, dtype=float)[None, :]
    if kind == "flat":
        return np.ones((n, n_days))
    if kind == "trending":  # exponential or linear, mostly up (10-80% a month), some down
        rate = rng.uniform(0.004, 0.02, (n, 1)) * np.where(rng.random((n, 1)) < 0.75, 1, -0.6)
        linear = rng.random((n, 1)) < 0.4
        exponential = np.exp(rate * (t - n_days + 1))
        straight = np.maximum(1 + rate * (t - n_days + 1), 0.25)
        return np.where(linear, straight, exponential)
    if kind == "level_shift":
        at = rng.integers(n_days - 120, n_days - 5, (n, 1))
        factor = np.where(
            rng.random((n, 1)) < 0.6, rng.uniform(1.6, 3, (n, 1)), rng.uniform(0.3, 0.6, (n, 1))
        )
        return np.where(t >= at, factor, 1.0)
    raise ValueError(kind)


@dataclass
class Usage:
    """Daily usage of n workloads and what it costs."""

    requests: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    cost: np.ndarray


def usage_series(
    rng, noise: TraceNoise, n: int, days: np.ndarray, kind: str, weekly: bool = True
) -> Usage:
    sample = noise.sample(rng, n, days.size)
    shape = trend_profile(rng, n, days.size, kind)
    if weekly:
        shape = shape * weekly_profile(rng, n, days)
    prices = MODEL_PRICES[rng.integers(0, len(MODEL_PRICES), n)]
    spend_per_unit = sample[1] * prices[:, :1] + sample[2] * prices[:, 1:]
    typical = spend_per_unit.mean(axis=1, keepdims=True)  # $ per bin at one request a bin
    level = np.exp(rng.uniform(np.log(10), np.log(5000), (n, 1)))  # $ a day
    requests_per_unit = level / typical
    scale = requests_per_unit * shape
    requests, tokens_in, tokens_out = (scale * s for s in sample)
    cost = tokens_in * prices[:, :1] + tokens_out * prices[:, 1:]
    return Usage(requests, tokens_in, tokens_out, cost)


# -- 1. month-end projections ----------------------------------------------------------------


def month_end_backtest(rng, noise: TraceNoise, per_kind: int) -> list[dict]:
    days = np.arange(np.datetime64("2024-01-01"), np.datetime64("2025-03-01"))
    kinds = {
        "trending": usage_series(rng, noise, per_kind, days, "trending").cost,
        "flat (weekly)": usage_series(rng, noise, per_kind, days, "flat").cost,
        "flat (raw trace)": usage_series(rng, noise, per_kind, days, "flat", weekly=False).cost,
        "level shift": usage_series(rng, noise, per_kind, days, "level_shift").cost,
    }
    months = [np.datetime64("2024-12"), np.datetime64("2025-01"), np.datetime64("2025-02")]
    rows = []
    for name, cost in kinds.items():
        errors_core, errors_naive, covered = [], [], []
        for month in months:
            start = month.astype("datetime64[D]")
            end = (month + 1).astype("datetime64[D]")
            columns = slice(int((start - days[0]).astype(int)), int((end - days[0]).astype(int)))
            actual = cost[:, columns].sum(axis=1)
            for as_of in np.arange(start, end - 1):
                result = forecast(cost, days, as_of)
                errors_core.append(np.abs(result.month_end - actual) / actual)
                errors_naive.append(np.abs(result.naive_month_end - actual) / actual)
                covered.append((result.month_end_low <= actual) & (actual <= result.month_end_high))
        core, naive = float(np.mean(errors_core)), float(np.mean(errors_naive))
        rows.append(
            {
                "series": name,
                "n": cost.shape[0],
                "origins": len(errors_core) // 1,
                "core": core,
                "naive": naive,
                "improvement": 1 - core / naive,
                "coverage": float(np.mean(covered)),
            }
        )
    return rows


# -- 2. detectors ------------------------------------------------------------------------------

INCIDENTS = {  # incident -> the detectors that should find it
    "clean": set(),
    "old_level_shift": set(),
    "gpu_few_idle_hours": set(),
    "retry_storm": {"retry_storm", "spend_anomaly_hourly"},
    "traffic_spike": {"spend_anomaly_hourly"},
    "daily_spike": {"spend_anomaly", "spend_anomaly_hourly"},
    "token_growth": {"token_growth"},
    "fan_out_growth": {"fan_out_growth"},
    "unit_cost_drift": {"unit_cost_drift"},
    "estimate_drift": {"estimate_drift"},
    "idle_gpu": {"idle_gpu"},
}
SHARE = {"clean": 0.34, "old_level_shift": 0.06, "gpu_few_idle_hours": 0.06}


def diurnal(rng, n: int) -> np.ndarray:
    """`(n, 24)` daily traffic shape: a smooth day/night cycle, peak/trough 2-6x."""
    hour = np.arange(24)
    peak = rng.uniform(11, 17, (n, 1))
    depth = rng.uniform(0.33, 0.8, (n, 1))
    shape = 1 - depth * (0.5 + 0.5 * np.cos(2 * np.pi * (hour - peak) / 24))
    return shape / shape.mean(axis=1, keepdims=True)


def detector_population(rng, noise: TraceNoise, n: int, n_days: int = 120):
    """Arrays for n workloads with their incident labels (`analyse` inputs)."""
    days = np.datetime64("2025-01-01") + np.arange(n_days)
    n_hours = 14 * 24
    hours = (days[-1] + 1).astype("datetime64[h]") - n_hours + np.arange(n_hours)
    names = list(INCIDENTS)
    weights = np.array([SHARE.get(k, 0.0) for k in names])
    weights[weights == 0] = (1 - weights.sum()) / np.count_nonzero(weights == 0)
    labels = rng.choice(names, size=n, p=weights)

    kind = np.where(rng.random(n) < 0.5, "flat", "trending")
    usage = [usage_series(rng, noise, 1, days, k) for k in kind]
    requests = np.vstack([u.requests for u in usage])
    tokens_in = np.vstack([u.input_tokens for u in usage])
    tokens_out = np.vstack([u.output_tokens for u in usage])
    cost = np.vstack([u.cost for u in usage])
    rows = np.arange(n)
    t = np.arange(n_days)[None, :]

    def is_(label):
        return labels == label

    def scale_usage(mask_rows, factor):
        nonlocal requests, tokens_in, tokens_out, cost
        requests = np.where(mask_rows, requests * factor, requests)
        tokens_in = np.where(mask_rows, tokens_in * factor, tokens_in)
        tokens_out = np.where(mask_rows, tokens_out * factor, tokens_out)
        cost = np.where(mask_rows, cost * factor, cost)

    # usage-level incidents (daily)
    shift_at = rng.integers(n_days - 50, n_days - 20, (n, 1))
    shift = np.where(
        rng.random((n, 1)) < 0.6, rng.uniform(1.6, 2.5, (n, 1)), rng.uniform(0.4, 0.6, (n, 1))
    )
    scale_usage(is_("old_level_shift")[:, None] & (t >= shift_at), shift)

    ramp_days = rng.integers(28, 36, (n, 1))
    total_growth = rng.uniform(1.3, 2.2, (n, 1))
    since = t - (n_days - ramp_days)
    growth = np.where(since > 0, total_growth ** (np.clip(since, 0, None) / ramp_days), 1.0)
    growing = is_("token_growth")[:, None]
    tokens_in = np.where(growing, tokens_in * growth, tokens_in)
    tokens_out = np.where(growing, tokens_out * growth, tokens_out)
    cost = np.where(growing, cost * growth, cost)

    fan_out = np.where(rng.random(n) < 0.7, rng.uniform(1, 4, n), 0.0)  # 0: no upstream metric
    fan_out[is_("fan_out_growth")] = rng.uniform(1, 4, is_("fan_out_growth").sum())
    upstream = np.where(fan_out[:, None] > 0, requests / np.maximum(fan_out[:, None], 1e-9), 0.0)
    upstream *= rng.lognormal(0, 0.02, upstream.shape)
    step_at = rng.integers(n_days - 14, n_days - 7, (n, 1))
    more_calls = rng.uniform(1.4, 2.5, (n, 1))
    scale_usage(is_("fan_out_growth")[:, None] & (t >= step_at), more_calls)

    drift_at = rng.integers(n_days - 10, n_days - 7, (n, 1))
    pricier = rng.uniform(1.35, 2.0, (n, 1))
    cost = np.where(is_("unit_cost_drift")[:, None] & (t >= drift_at), cost * pricier, cost)

    spike = rng.uniform(2.5, 6, n)
    day_before_spike = cost[:, -1].copy()
    scale_usage(is_("daily_spike")[:, None] & (t == n_days - 1), spike[:, None])

    errors = requests * rng.uniform(0.001, 0.02, (n, 1)) * rng.lognormal(0, 0.3, requests.shape)
    throttles = requests * rng.uniform(0, 0.003, (n, 1))
    estimate_factor = np.where(
        is_("estimate_drift"),
        np.where(rng.random(n) < 0.5, rng.uniform(0.3, 0.7, n), rng.uniform(1.5, 3.0, n)),
        1.0,
    )
    estimated = cost * estimate_factor[:, None] * rng.lognormal(0, 0.02, cost.shape)
    has_billed = np.ones(cost.shape, dtype=bool)
    has_billed[:, -2:] = False  # billing arrives two days late
    billed = np.where(has_billed, cost, 0.0)
    daily_cost = np.where(has_billed, billed, estimated)

    # hourly: the last 14 days spread over the hours with a diurnal shape and real noise
    hourly_noise = noise.sample(rng, n, n_hours)[0]
    shape = np.tile(diurnal(rng, n), 14) * hourly_noise
    per_day = shape.reshape(n, 14, 24)
    share = (per_day / np.maximum(per_day.sum(axis=2, keepdims=True), 1e-9)).reshape(n, n_hours)

    def to_hours(values):
        return np.repeat(values[:, -14:], 24, axis=1) * share

    h_requests, h_in, h_out = to_hours(requests), to_hours(tokens_in), to_hours(tokens_out)
    h_errors, h_throttles = to_hours(errors), to_hours(throttles)
    h_cost = to_hours(estimated)
    h_upstream = to_hours(upstream)

    last = -1
    hour_before = h_cost[:, last].copy()
    storm = is_("retry_storm")
    surge = rng.uniform(3.5, 10, n)
    extra = h_requests[:, last] * (surge - 1)
    h_errors[storm, last] += (h_requests[storm, last] + extra[storm]) * rng.uniform(
        0.3, 0.8, storm.sum()
    )
    h_throttles[storm, last] += h_requests[storm, last] * rng.uniform(0, 0.5, storm.sum())
    billed_share = rng.uniform(0.3, 0.7, n)
    h_cost[storm, last] *= 1 + (surge[storm] - 1) * billed_share[storm]
    h_requests[storm, last] += extra[storm]
    traffic = is_("traffic_spike")
    jump = rng.uniform(4, 8, n)
    for values in (h_requests, h_in, h_out, h_cost, h_errors):
        values[traffic, last] *= jump[traffic]

    # GPU fleets: a quarter of the workloads, and every idle-GPU case
    fleet = (rng.random(n) < 0.25) | is_("idle_gpu") | is_("gpu_few_idle_hours")
    instances = np.where(fleet, rng.choice([1, 2, 4], n), 0).astype(float)
    price = rng.uniform(1, 12, n)
    busy = 30 + 55 * (diurnal(rng, n) - 0.2).clip(0, None) / 1.6
    utilisation = np.clip(np.tile(busy, 14) + rng.normal(0, 5, (n, n_hours)), 25, 100)
    week = slice(n_hours - 168, n_hours)
    idle_rows = np.flatnonzero(is_("idle_gpu"))
    for row in idle_rows:
        idle_hours = rng.integers(40, 169)
        chosen = rng.choice(168, idle_hours, replace=False) + n_hours - 168
        utilisation[row, chosen] = rng.uniform(1, 12, idle_hours)
    for row in np.flatnonzero(is_("gpu_few_idle_hours")):
        chosen = rng.choice(168, rng.integers(5, 18), replace=False) + n_hours - 168
        utilisation[row, chosen] = rng.uniform(2, 15, chosen.size)
    del week
    gpu = GpuArrays(
        hours=hours,
        instance_hours=np.repeat(instances[:, None], n_hours, axis=1),
        gpu_hours=np.repeat(4 * instances[:, None], n_hours, axis=1),
        utilisation_pct=np.where(fleet[:, None], utilisation, 0.0),
        cost=np.repeat((instances * price)[:, None], n_hours, axis=1),
        tokens_served=np.where(fleet[:, None], h_in + h_out, 0.0),
    )
    daily = DailyArrays(
        days=days,
        cost=daily_cost,
        billed_cost=billed,
        estimated_cost=estimated,
        has_billed=has_billed,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        requests=requests,
        errors=errors,
        throttles=throttles,
        upstream_requests=upstream,
        workload_ids=rows,
    )
    hourly = HourlyArrays(
        hours=hours,
        cost=h_cost,
        input_tokens=h_in,
        output_tokens=h_out,
        requests=h_requests,
        errors=h_errors,
        throttles=h_throttles,
        upstream_requests=h_upstream,
        workload_ids=rows,
    )
    # An incident whose excess is under the anomaly money floor must not alert, by design:
    # it is left out of the anomaly detectors' scores (neither a miss nor a false alarm).
    floor = Thresholds().anomaly_min_amount
    hour_excess = np.select(
        [storm, traffic, is_("daily_spike")],
        [
            hour_before * (surge - 1) * billed_share,
            hour_before * (jump - 1),
            hour_before * (spike - 1) / spike,
        ],
        np.inf,
    )
    immaterial = {
        "spend_anomaly": is_("daily_spike") & (day_before_spike * (spike - 1) < floor),
        "spend_anomaly_hourly": hour_excess < floor,
    }
    return labels, daily, hourly, gpu, immaterial


def detector_backtest(
    rng, noise: TraceNoise, rounds: int, n: int, verbose: bool = False
) -> list[dict]:
    truth_positive = {kind: 0 for kind in DETECTION_KINDS}
    flagged = {kind: 0 for kind in DETECTION_KINDS}
    true_positive = {kind: 0 for kind in DETECTION_KINDS}
    mistakes: dict[tuple[str, str, str], int] = {}
    excluded = {kind: 0 for kind in DETECTION_KINDS}
    for _ in range(rounds):
        labels, daily, hourly, gpu, immaterial = detector_population(rng, noise, n)
        result = analyse(daily, hourly, gpu=gpu)
        for kind in DETECTION_KINDS:
            counted = ~immaterial.get(kind, np.zeros(n, dtype=bool))
            excluded[kind] += int((~counted).sum())
            expected = np.array([kind in INCIDENTS[label] for label in labels]) & counted
            found = np.zeros(n, dtype=bool)
            found[result.detections[kind].workloads] = True
            found &= counted
            truth_positive[kind] += int(expected.sum())
            flagged[kind] += int(found.sum())
            true_positive[kind] += int((expected & found).sum())
            for what, rows_ in (
                ("false positive", found & ~expected),
                ("missed", expected & ~found),
            ):
                for label in labels[rows_]:
                    key = (kind, what, str(label))
                    mistakes[key] = mistakes.get(key, 0) + 1
    if verbose:
        for (kind, what, label), count in sorted(mistakes.items()):
            print(f"  {kind}: {what} on {label}: {count}")
    rows = []
    for kind in DETECTION_KINDS:
        precision = true_positive[kind] / flagged[kind] if flagged[kind] else 1.0
        recall = true_positive[kind] / truth_positive[kind] if truth_positive[kind] else 1.0
        rows.append(
            {
                "detector": kind,
                "positives": truth_positive[kind],
                "flagged": flagged[kind],
                "true_positives": true_positive[kind],
                "precision": precision,
                "recall": recall,
                "immaterial": excluded[kind],
            }
        )
    return rows


# -- 3. lasting level shifts -----------------------------------------------------------------

AFTER_STEP = 28  # days scored after each step, the step day included


def level_shift_backtest(rng, noise: TraceNoise, n: int) -> list[dict]:
    """The daily anomaly detector around a lasting step of spend (a new customer, a cost
    cut), against the same series without one: how often the step day and the days after it
    alert, and whether a spike 7-27 days after the step is still found."""
    n_days = 120
    days = np.datetime64("2025-01-01") + np.arange(n_days)
    t = np.arange(n_days)[None, :]
    first = n_days - AFTER_STEP - 6  # first scored day; the step is on any weekday after it
    thresholds = Thresholds()

    def scores(cost):
        return daily_anomalies(
            cost,
            days,
            eval_days=n_days - first,
            z=thresholds.anomaly_z,
            min_amount=thresholds.anomaly_min_amount,
            min_ratio=thresholds.anomaly_min_ratio,
        )

    rows = []
    for name, low, high in (("step up", 1.6, 3.0), ("step down", 0.3, 0.6), ("no step", 1, 1)):
        cost = usage_series(rng, noise, n, days, "flat").cost
        step_at = rng.integers(first, first + 7, (n, 1))
        cost = np.where(t >= step_at, cost * rng.uniform(low, high, (n, 1)), cost)
        alarms = scores(cost).is_anomaly  # (n, n_days - first)
        since_step = np.arange(first, n_days)[None, :] - step_at  # days after the step
        # alarms a workload on each day after the step: 0 (the step day) .. AFTER_STEP - 1
        by_day = np.array([(alarms & (since_step == d)).sum() for d in range(AFTER_STEP)]) / n

        spike_at = step_at[:, 0] + rng.integers(7, AFTER_STEP, n)
        spike = rng.uniform(2.5, 6, n)
        workloads = np.arange(n)
        material = cost[workloads, spike_at] * (spike - 1) >= thresholds.anomaly_min_amount
        spiked = cost.copy()
        spiked[workloads, spike_at] *= spike
        found = scores(spiked).is_anomaly[workloads, spike_at - first]

        rows.append(
            {
                "series": name,
                "n": n,
                "step day": float(by_day[0]),
                "days 1-2": float(by_day[1:3].sum()),
                "days 3-6": float(by_day[3:7].sum()),
                "days 7-27": float(by_day[7:].sum()),
                "spike recall": float(found[material].mean()),
            }
        )
    return rows


# -- 4. month-end ranges on generated shapes, on the production path ---------------------------

SHAPES = ("flat", "trending", "ar1", "random walk")
HISTORY = 91  # days the checks pass to the forecast (governance.checks.HISTORY_DAYS)


def shaped(rng, shape: str, n: int, n_days: int) -> np.ndarray:
    """`(n, n_days)` daily spend of one generated shape, $10-$5,000 a day, half the series
    with quiet weekends:

    - flat: a constant level, multiplicative noise of 5-20%;
    - trending: linear or exponential, 0.3-1.5% of the level a day, three in four up;
    - ar1: a constant level times 1 + AR(1) noise with rho = 0.9 (marginal sd 8-20%);
    - random walk: the log level a random walk (steps of 1.5-4%), plus 3% noise;
    - growing (held out): exponential growth of 0.5-2% a day, noise of 5-15%.
    """
    t = np.arange(n_days, dtype=float)[None, :]
    level = np.exp(rng.uniform(np.log(10), np.log(5000), (n, 1)))
    weekend = np.where(rng.random((n, 1)) < 0.5, rng.uniform(0.4, 1.0, (n, 1)), 1.0)
    # the weekday of column 0 is random: weekends are columns where (t + offset) % 7 >= 5
    offset = rng.integers(0, 7, (n, 1))
    weekly = np.where((t + offset) % 7 >= 5, weekend, 1.0)

    def noise(low, high):
        return 1 + rng.uniform(low, high, (n, 1)) * rng.standard_normal((n, n_days))

    if shape == "flat":
        path = noise(0.05, 0.2)
    elif shape in ("trending", "growing"):
        if shape == "trending":
            rate = rng.uniform(0.003, 0.015, (n, 1)) * np.where(rng.random((n, 1)) < 0.75, 1, -1)
            linear = rng.random((n, 1)) < 0.5
            path = noise(0.05, 0.2)
        else:
            rate = rng.uniform(0.005, 0.02, (n, 1))
            linear = np.zeros((n, 1), dtype=bool)
            path = noise(0.05, 0.15)
        since = t - (n_days - 31)  # the level is `level` a month before the end
        trend = np.where(linear, np.maximum(1 + rate * since, 0.2), np.exp(rate * since))
        path = path * trend
    elif shape == "ar1":
        sd = rng.uniform(0.08, 0.2, (n, 1))
        step = sd * np.sqrt(1 - 0.9**2)
        shocks = step * rng.standard_normal((n, n_days))
        ar = np.empty((n, n_days))
        ar[:, 0] = sd[:, 0] * rng.standard_normal(n)
        for day in range(1, n_days):
            ar[:, day] = 0.9 * ar[:, day - 1] + shocks[:, day]
        path = np.maximum(1 + ar, 0.05)
    elif shape == "random walk":
        steps = rng.uniform(0.015, 0.04, (n, 1)) * rng.standard_normal((n, n_days))
        walk = np.cumsum(steps, axis=1)
        path = np.exp(walk - walk[:, -32:-31]) * noise(0.03, 0.03)
    else:
        raise ValueError(shape)
    return np.maximum(level * weekly * path, 0.0)


def holt_winters(history: np.ndarray, horizon: int) -> np.ndarray:
    """Additive Holt-Winters (level, trend, weekly season) for every row of `(n, D)`, its
    smoothing parameters chosen per row from a small grid by in-sample one-step squared
    error; returns `(n, horizon)` the projected days."""
    n, n_days = history.shape
    grid = [
        (alpha, beta, gamma)
        for alpha in (0.05, 0.1, 0.2, 0.35, 0.5, 0.7)
        for beta in (0.0, 0.02, 0.05, 0.15)
        for gamma in (0.05, 0.2)
    ]
    best_error = np.full(n, np.inf)
    best = np.zeros((n, horizon))
    first_weeks = history[:, :14]
    for alpha, beta, gamma in grid:
        level = first_weeks.mean(axis=1)
        trend = (history[:, 7:14].mean(axis=1) - history[:, :7].mean(axis=1)) / 7
        season = first_weeks[:, :7] - first_weeks[:, :7].mean(axis=1, keepdims=True)
        season = season.copy()
        error = np.zeros(n)
        for day in range(n_days):
            k = day % 7
            predicted = level + trend + season[:, k]
            if day >= 14:
                error += (history[:, day] - predicted) ** 2
            previous = level
            level = alpha * (history[:, day] - season[:, k]) + (1 - alpha) * (level + trend)
            trend = beta * (level - previous) + (1 - beta) * trend
            season[:, k] = gamma * (history[:, day] - level) + (1 - gamma) * season[:, k]
        steps = np.arange(1, horizon + 1)
        ahead = (
            level[:, None] + trend[:, None] * steps[None, :] + season[:, (n_days + steps - 1) % 7]
        )
        better = error < best_error
        best_error[better], best[better] = error[better], ahead[better]
    return np.maximum(best, 0.0)


RANGE_MONTH = np.datetime64("2025-01")


def range_backtest(rng, per_origin: int, month=RANGE_MONTH) -> list[dict]:
    """Every day of `month` but the last as the origin: `per_origin` fresh series of each
    shape with HISTORY days up to it, projected by `economics.forecast` called as the checks
    call it; coverage of the 90% month-end range, MAPE of ours, Holt-Winters' and the run
    rate's month-end totals."""
    first = month.astype("datetime64[D]")
    month_days = int(((month + 1).astype("datetime64[D]") - first).astype(int))
    rows = []
    for shape in (*SHAPES, "growing"):
        covered, errors = [], {"core": [], "holt_winters": [], "run_rate": []}
        widths = []
        for day in range(month_days - 1):
            as_of = first + day
            days = as_of - HISTORY + 1 + np.arange(HISTORY + month_days)
            spend = shaped(rng, shape, per_origin, days.size)
            in_month = (days >= first) & (days < first + month_days)
            actual = spend[:, in_month].sum(axis=1)
            history = spend[:, :HISTORY]
            budgets = np.full(per_origin, np.nan)
            # governance.checks: economics.forecast(self.spend, self.daily.days, self.last_day,
            # self.budgets), with HISTORY_DAYS of spend through the last whole day
            result = forecast(history, days[:HISTORY], as_of, budgets)
            remaining = month_days - day - 1
            spent = history[:, HISTORY - day - 1 :].sum(axis=1)
            hw = spent + holt_winters(history, max(remaining, 1))[:, :remaining].sum(axis=1)
            covered.append((result.month_end_low <= actual) & (actual <= result.month_end_high))
            widths.append((result.month_end_high - result.month_end_low) / actual)
            for name, projected in (
                ("core", result.month_end),
                ("holt_winters", hw),
                ("run_rate", result.naive_month_end),
            ):
                errors[name].append(np.abs(projected - actual) / actual)
        rows.append(
            {
                "series": shape,
                "n": per_origin * (month_days - 1),
                "coverage": float(np.mean(covered)),
                "width": float(np.median(widths)),
                **{name: float(np.mean(values)) for name, values in errors.items()},
            }
        )
    return rows


def print_ranges(rows: list[dict], per_origin: int) -> dict[str, bool]:
    print(
        f"\nMonth-end 90% range on generated shapes, through economics.forecast as the checks "
        f"call it ({HISTORY} days of history; every day of January 2025 but the last as the "
        f"origin, {per_origin} fresh series each): coverage and MAPE of the month total"
    )
    print(
        f"{'series':<14}{'n':>7}{'90% range holds':>17}{'median width':>14}{'core':>8}"
        f"{'Holt-Winters':>14}{'run rate':>10}"
    )
    for row in rows:
        print(
            f"{row['series']:<14}{row['n']:>7}{row['coverage']:>17.1%}{row['width']:>14.1%}"
            f"{row['core']:>8.2%}{row['holt_winters']:>14.2%}{row['run_rate']:>10.2%}"
        )
    print("(growing: held out, exponential growth of 0.5-2% a day; width relative to the total)")
    by_shape = {row["series"]: row for row in rows}
    return {
        "the 90% range holds 88-92% on each shape": all(
            0.88 <= by_shape[shape]["coverage"] <= 0.92 for shape in SHAPES
        ),
        "month-end MAPE on growing series no worse than Holt-Winters": (
            by_shape["growing"]["core"] <= by_shape["growing"]["holt_winters"]
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=ROOT.parent / "shared" / "data",
        help="the shared data folder (default: ../shared/data)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--series", type=int, default=200, help="series per kind (month end)")
    parser.add_argument("--rounds", type=int, default=4, help="detector populations")
    parser.add_argument("--workloads", type=int, default=2000, help="workloads per population")
    parser.add_argument(
        "--shift-workloads", type=int, default=2000, help="workloads per level-shift series"
    )
    parser.add_argument(
        "--range-series",
        type=int,
        default=100,
        help="fresh series of each generated shape per origin (section 4)",
    )
    parser.add_argument(
        "--only",
        choices=("ranges",),
        help="run only this section (ranges: generated shapes, no trace data needed)",
    )
    parser.add_argument("--verbose", action="store_true", help="list each detector's mistakes")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    if args.only == "ranges":
        checks = print_ranges(range_backtest(rng, args.range_series), args.range_series)
        print()
        for label, ok in checks.items():
            print(f"{'PASS' if ok else 'FAIL'}  {label}")
        print(f"\n({time.perf_counter() - started:.0f} s)")
        return 0 if all(checks.values()) else 1

    traces = load_traces(args.data)
    noise = TraceNoise(traces)
    print(f"traces: {', '.join(f'{t.name} ({t.seconds.size} requests)' for t in traces)}")

    print(
        "\nMonth-end projection, rolling origin (every day of Dec 2024 - Feb 2025 but the "
        "last), MAPE"
    )
    print(
        f"{'series':<18}{'n':>5}{'origins':>9}{'core':>9}{'run rate':>10}{'better by':>11}"
        f"{'90% range holds':>17}"
    )
    projection = month_end_backtest(rng, noise, args.series)
    for row in projection:
        print(
            f"{row['series']:<18}{row['n']:>5}{row['origins']:>9}{row['core']:>9.1%}"
            f"{row['naive']:>10.1%}{row['improvement']:>11.1%}{row['coverage']:>17.1%}"
        )

    print(
        f"\nDetectors: {args.rounds} populations of {args.workloads} workloads, "
        "analysed as of their last day / hour"
    )
    print(
        f"{'detector':<22}{'positives':>10}{'flagged':>9}{'true pos.':>10}{'precision':>11}"
        f"{'recall':>8}{'left out':>10}"
    )
    detection = detector_backtest(rng, noise, args.rounds, args.workloads, args.verbose)
    for row in detection:
        print(
            f"{row['detector']:<22}{row['positives']:>10}{row['flagged']:>9}"
            f"{row['true_positives']:>10}{row['precision']:>11.3f}{row['recall']:>8.3f}"
            f"{row['immaterial']:>10}"
        )
    print(
        "(retry storms are injected in the last hour only: recall is first-hour recall;\n"
        " left out: spikes whose excess is under the anomaly money floor: they must not alert)"
    )

    print(
        f"\nLasting level shifts: daily anomalies on {args.shift_workloads} workloads each, "
        f"from the step day to {AFTER_STEP - 1} days after"
    )
    print(
        f"{'series':<12}{'flagged on step day':>21}{'alarms a workload: days 1-2':>29}"
        f"{'3-6':>6}{'7-27':>7}{'spike recall, days 7-27':>25}"
    )
    shifts = level_shift_backtest(rng, noise, args.shift_workloads)
    for row in shifts:
        print(
            f"{row['series']:<12}{row['step day']:>21.3f}{row['days 1-2']:>29.3f}"
            f"{row['days 3-6']:>6.3f}{row['days 7-27']:>7.3f}{row['spike recall']:>25.3f}"
        )
    print("(alarms a workload: flagged days per workload in that span after the step)")

    ranges = print_ranges(range_backtest(rng, args.range_series), args.range_series)

    by_name = {row["series"]: row for row in projection}
    by_shift = {row["series"]: row for row in shifts}
    checks = {
        "trending MAPE >= 25% below the run rate": by_name["trending"]["improvement"] >= 0.25,
        "flat MAPE no worse than the run rate": all(
            by_name[k]["core"] <= by_name[k]["naive"] for k in ("flat (weekly)", "flat (raw trace)")
        ),
        "every detector precision and recall >= 0.9": all(
            r["precision"] >= 0.9 and r["recall"] >= 0.9 for r in detection
        ),
        "a lasting step up alerts on its day (>= 0.8), then from day 7 no more than no step": (
            by_shift["step up"]["step day"] >= 0.8
            and all(
                by_shift[k]["days 7-27"] <= by_shift["no step"]["days 7-27"] + 0.05
                for k in ("step up", "step down")
            )
        ),
        "spikes 7-27 days after a lasting step: recall >= 0.95": all(
            row["spike recall"] >= 0.95 for row in shifts
        ),
        **ranges,
    }
    print()
    for label, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {label}")
    print(f"\n({time.perf_counter() - started:.0f} s)")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

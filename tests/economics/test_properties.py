"""Properties of the core that must hold for any input (hypothesis).

- decomposition effects add up to the change;
- a constant series forecasts that constant;
- scaling every cost by k scales every money output by k (k a power of two, so the scaling
  is exact in floating point: with any other k a comparison against a threshold could flip
  on the last bit, which says nothing about the model);
- no NaN or infinity comes out of any finite input, including all zeros, one day of
  history and a single workload (0 or magnitudes from 1e-6 up to 1e9 money and 1e12 counts).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from llmgov.economics import (
    DailyArrays,
    GpuArrays,
    HourlyArrays,
    PeriodTotals,
    Thresholds,
    analyse,
    decompose,
    forecast,
)

# ECONOMICS_EXAMPLES=1000 for a longer search than the default run needs
SETTINGS = settings(
    max_examples=int(os.environ.get("ECONOMICS_EXAMPLES", "50")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
START = np.datetime64("2024-01-01")


def values(shape, high, allow_negative=False):
    """Arrays of 0 or magnitudes in [1e-6, high]: the range real money and counts live in.
    (No bound at all is impossible: two floats near 1e308 already overflow when added.)"""
    magnitude = st.floats(1e-6, high, allow_nan=False, allow_infinity=False)
    signed = st.one_of(magnitude, magnitude.map(lambda v: -v)) if allow_negative else magnitude
    # zeros and repeated values are the interesting corners: make them common
    element = st.one_of(st.just(0.0), st.sampled_from([1.0, 100.0]), signed)
    return hnp.arrays(np.float64, shape, elements=element)


@st.composite
def workloads(draw, allow_negative=False):
    n = draw(st.integers(1, 4))
    n_days = draw(st.integers(1, 70))
    n_hours = draw(st.sampled_from([0, 1, 25, 24 * 8 + 3]))
    offset = draw(st.integers(0, 400))
    days = START + offset + np.arange(n_days)
    hours = (days[-1] + 1).astype("datetime64[h]") - n_hours + np.arange(n_hours)

    def money(shape):
        return draw(values(shape, 1e9, allow_negative))

    def counts(shape):
        return draw(values(shape, 1e12, allow_negative))

    shape = (n, n_days)
    daily = DailyArrays(
        days=days,
        cost=money(shape),
        billed_cost=money(shape),
        estimated_cost=money(shape),
        has_billed=draw(hnp.arrays(bool, shape)),
        input_tokens=counts(shape),
        output_tokens=counts(shape),
        requests=counts(shape),
        errors=counts(shape),
        throttles=counts(shape),
        upstream_requests=counts(shape),
        gpu_cost=money(shape),
    )
    hour_shape = (n, n_hours)
    hourly = HourlyArrays(
        hours=hours,
        cost=money(hour_shape),
        input_tokens=counts(hour_shape),
        output_tokens=counts(hour_shape),
        requests=counts(hour_shape),
        errors=counts(hour_shape),
        throttles=counts(hour_shape),
    )
    gpu = GpuArrays(
        hours=hours,
        instance_hours=draw(values(hour_shape, 64.0)),
        gpu_hours=draw(values(hour_shape, 512.0)),
        utilisation_pct=draw(values(hour_shape, 100.0)),
        cost=money(hour_shape),
        tokens_served=counts(hour_shape),
    )
    budgets = draw(
        hnp.arrays(
            np.float64,
            (n,),
            elements=st.one_of(st.just(np.nan), st.floats(0, 1e9, allow_nan=False)),
        )
    )
    return daily, hourly, gpu, budgets


def money_outputs(result) -> dict[str, np.ndarray]:
    """Every money figure of an analysis, by name."""
    out = {}
    f = result.forecast
    for name in (
        "month_to_date",
        "month_end",
        "month_end_low",
        "month_end_high",
        "naive_month_end",
        "next_30",
        "next_30_low",
        "next_30_high",
        "next_90",
        "next_90_low",
        "next_90_high",
        "daily_path",
        "daily_low",
        "daily_high",
        "next_day_sd",
        "level",
        "trend_per_day",
        "daily_sigma",
    ):
        out[f"forecast.{name}"] = getattr(f, name)
    for name in (
        "before",
        "after",
        "change",
        "volume",
        "retries",
        "intensity",
        "price_mix",
        "unexplained",
    ):
        out[f"change.{name}"] = getattr(result.change, name)
    for name in (
        "cost",
        "cost_per_1k_tokens",
        "cost_per_1k_input_tokens",
        "cost_per_1k_output_tokens",
        "cost_per_request",
        "cost_per_upstream_request",
        "self_hosted_cost",
        "self_hosted_cost_per_mtok",
    ):
        out[f"unit.{name}"] = getattr(result.unit, name)
    for kind, found in result.detections.items():
        out[f"{kind}.money"] = found.money_at_stake
    return out


def all_numbers(result):
    """Every float array in an analysis (money, evidence, scores)."""
    arrays = list(money_outputs(result).values())
    for found in result.detections.values():
        arrays.extend(found.evidence.values())
    for scores in (result.daily_anomalies, result.hourly_anomalies):
        if scores is not None:
            arrays += [scores.expected, scores.excess, scores.scale, scores.score]
    arrays += [
        dataclasses.asdict(result.unit)[k]
        for k in (
            "tokens_per_request",
            "error_share",
            "calls_per_upstream_request",
            "gpu_utilisation_pct",
        )
    ]
    return arrays


@SETTINGS
@given(workloads(allow_negative=True))
def test_no_nan_or_infinity_from_finite_input(case):
    daily, hourly, gpu, budgets = case
    with np.errstate(divide="raise", invalid="raise", over="raise"):  # no silent 0/0 either
        result = analyse(daily, hourly, budgets, gpu=gpu)
    for array in all_numbers(result):
        assert np.isfinite(array).all()


@SETTINGS
@given(st.integers(1, 4), st.integers(1, 120), st.floats(0, 1e7, allow_subnormal=False))
def test_constant_series_forecasts_the_constant(n, n_days, constant):
    days = START + np.arange(n_days)
    result = forecast(np.full((n, n_days), constant), days)
    np.testing.assert_allclose(result.daily_path, constant, rtol=1e-9, atol=1e-9)
    elapsed = min(
        int((days[-1] - days[-1].astype("datetime64[M]")) / np.timedelta64(1, "D")) + 1, n_days
    )
    month_days = (
        (days[-1].astype("datetime64[M]") + 1).astype("datetime64[D]")
        - days[-1].astype("datetime64[M]").astype("datetime64[D]")
    ).astype(int)
    remaining = (
        month_days
        - int((days[-1] - days[-1].astype("datetime64[M]").astype("datetime64[D]")).astype(int))
        - 1
    )
    np.testing.assert_allclose(
        result.month_end, constant * (elapsed + remaining), rtol=1e-9, atol=1e-6
    )
    np.testing.assert_allclose(result.next_30, 30 * constant, rtol=1e-9, atol=1e-6)


@SETTINGS
@given(workloads(), st.sampled_from([0.25, 2.0, 8.0, 1024.0]))
def test_scaling_costs_scales_every_money_output(case, k):
    daily, hourly, gpu, budgets = case
    scaled_daily = dataclasses.replace(
        daily,
        cost=daily.cost * k,
        billed_cost=daily.billed_cost * k,
        estimated_cost=daily.estimated_cost * k,
        gpu_cost=daily.gpu_cost * k,
    )
    scaled_hourly = dataclasses.replace(hourly, cost=hourly.cost * k)
    scaled_gpu = dataclasses.replace(gpu, cost=gpu.cost * k)
    money_floors = ("anomaly_min_amount", "estimate_drift_min_amount", "min_amount")
    base = Thresholds()
    scaled = dataclasses.replace(base, **{name: getattr(base, name) * k for name in money_floors})

    plain = analyse(daily, hourly, budgets, thresholds=base, gpu=gpu)
    times_k = analyse(scaled_daily, scaled_hourly, budgets * k, thresholds=scaled, gpu=scaled_gpu)
    for kind in plain.detections:
        assert (
            plain.detections[kind].workloads.tolist() == times_k.detections[kind].workloads.tolist()
        ), kind
    expected, actual = money_outputs(plain), money_outputs(times_k)
    # Equal up to rounding relative to the money involved (a log or a sum of terms that
    # cancel leaves ~1e-16 of the inputs' size, which does not scale exactly).
    inputs = [daily.cost, daily.billed_cost, daily.estimated_cost, hourly.cost, gpu.cost]
    money_scale = max(float(np.abs(a).max(initial=0.0)) for a in inputs)
    for name, values_ in expected.items():
        size = max(money_scale, float(np.abs(values_).max(initial=0.0)))
        np.testing.assert_allclose(
            actual[name], k * values_, rtol=1e-9, atol=1e-9 * k * size, err_msg=name
        )
    np.testing.assert_array_equal(plain.forecast.exhaustion_date, times_k.forecast.exhaustion_date)


@SETTINGS
@given(st.integers(1, 6).flatmap(lambda n: st.tuples(*[values((n,), 1e9)] * 8)))
def test_decomposition_effects_add_up_to_the_change(columns):
    cost0, requests0, errors0, tokens0, cost1, requests1, errors1, tokens1 = columns
    result = decompose(
        PeriodTotals(cost0, requests0, errors0, tokens0),
        PeriodTotals(cost1, requests1, errors1, tokens1),
    )
    effects = result.effects()
    assert np.isfinite(effects).all()
    np.testing.assert_allclose(
        effects.sum(axis=1),
        cost1 - cost0,
        rtol=1e-9,
        atol=1e-9 * max(1.0, np.abs(cost1 - cost0).max()),
    )

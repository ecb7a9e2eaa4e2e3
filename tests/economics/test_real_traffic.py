"""The core on series built from a real request trace (a cut in tests/fixtures/traces):
clean real traffic must raise no alarm, and an injected storm is found in its first hour."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from llmgov.economics import DailyArrays, HourlyArrays, analyse, forecast

TRACE = Path(__file__).parents[1] / "fixtures" / "traces" / "azure_conv_first_1200.csv"
PRICE_IN, PRICE_OUT = 0.25e-6, 1.25e-6  # $ per token


@pytest.fixture(scope="module")
def trace() -> np.ndarray:
    """`(3, n)` seconds from the first request, input tokens, output tokens."""
    with open(TRACE, newline="") as handle:
        rows = list(csv.DictReader(handle))
    seconds = np.array([datetime.fromisoformat(r["TIMESTAMP"][:26]).timestamp() for r in rows])
    return np.array(
        [
            seconds - seconds.min(),
            [float(r["ContextTokens"]) for r in rows],
            [float(r["GeneratedTokens"]) for r in rows],
        ]
    )


def traffic(trace, rng, n: int, bins: int, copies: int = 32) -> np.ndarray:
    """`(3, n, bins)` requests, input and output tokens: each row the sum of `copies`
    randomly time-shifted (circular) copies of the trace, cut into `bins` periods."""
    span = trace[0].max() + 1e-6
    out = np.zeros((3, n, bins))
    for row in range(n):
        for _ in range(copies):
            shifted = (trace[0] + rng.uniform(0, span)) % span
            index = (shifted / span * bins).astype(int)
            out[0, row] += np.bincount(index, minlength=bins)
            out[1, row] += np.bincount(index, weights=trace[1], minlength=bins)
            out[2, row] += np.bincount(index, weights=trace[2], minlength=bins)
    return out


@pytest.fixture(scope="module")
def arrays(trace):
    rng = np.random.default_rng(11)
    n, n_days, n_hours = 12, 90, 8 * 24
    days = np.datetime64("2024-01-01") + np.arange(n_days)
    requests, tokens_in, tokens_out = traffic(trace, rng, n, n_days) * 40  # ~10k calls a day
    cost = tokens_in * PRICE_IN + tokens_out * PRICE_OUT
    daily = DailyArrays(
        days=days,
        cost=cost,
        billed_cost=cost,
        estimated_cost=cost,
        has_billed=np.ones_like(cost, dtype=bool),
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        requests=requests,
        errors=requests * 0.005,
        upstream_requests=requests / 2,
    )
    hours = (days[-1] + 1).astype("datetime64[h]") - n_hours + np.arange(n_hours)
    h_requests, h_in, h_out = traffic(trace, rng, n, n_hours) * 40 / 24
    hourly = HourlyArrays(
        hours=hours,
        cost=h_in * PRICE_IN + h_out * PRICE_OUT,
        input_tokens=h_in,
        output_tokens=h_out,
        requests=h_requests,
        errors=h_requests * 0.005,
    )
    return daily, hourly


def test_clean_real_traffic_raises_no_alarm(arrays):
    daily, hourly = arrays
    result = analyse(daily, hourly)
    assert result.flagged() == []
    assert np.isfinite(result.forecast.month_end).all()


def test_month_end_of_real_traffic_within_a_few_percent(arrays):
    daily, _ = arrays
    as_of = np.datetime64("2024-03-15")
    projected = forecast(daily.cost, daily.days, as_of).month_end
    actual = daily.cost[:, 60:91].sum(axis=1)  # March
    assert np.all(np.abs(projected / actual - 1) < 0.1)


def test_a_storm_on_real_traffic_is_found_in_its_first_hour(arrays):
    daily, hourly = arrays
    requests, errors, cost = hourly.requests.copy(), hourly.errors.copy(), hourly.cost.copy()
    requests[3, -1] *= 5
    errors[3, -1] = 0.6 * requests[3, -1]
    cost[3, -1] *= 3
    stormy = HourlyArrays(
        hours=hourly.hours,
        cost=cost,
        requests=requests,
        errors=errors,
        input_tokens=hourly.input_tokens,
        output_tokens=hourly.output_tokens,
    )
    found = analyse(daily, stormy).detections["retry_storm"]
    assert found.workloads.tolist() == [3]
    assert found.since[0] == hourly.hours[-1]

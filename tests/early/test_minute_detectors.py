"""economics.minute_detectors: storms and runaways in a few minutes of data."""

from __future__ import annotations

import numpy as np

from llmgov.economics.minute_detectors import (
    MinuteArrays,
    MinuteThresholds,
    baseline_from_hours,
    minute_retry_storm,
    runaway,
)

T = 10
MINUTES = np.arange(np.datetime64("2026-12-07T10:00"), np.datetime64("2026-12-07T10:10"))


def arrays(calls, *, errors=None, throttles=None, tokens_per_call=1000.0, price=5e-6):
    calls = np.asarray(calls, dtype=float)
    errors = np.zeros_like(calls) if errors is None else np.asarray(errors, dtype=float)
    throttles = np.zeros_like(calls) if throttles is None else np.asarray(throttles, dtype=float)
    tokens = (calls - errors) * tokens_per_call
    return MinuteArrays(MINUTES, calls, tokens, errors, throttles, tokens * price)


def flat_baseline(rows: int, per_minute: float, tokens_per_call=1000.0, price=5e-6):
    hours = np.full((rows, 7), per_minute * 60)
    return baseline_from_hours(
        hours, hours * tokens_per_call, hours * 0.01, hours * 0.0, hours * tokens_per_call * price
    )


def test_a_storm_is_flagged_and_normal_traffic_with_a_busy_minute_is_not():
    normal = np.full(T, 40.0)
    spiky = normal.copy()
    spiky[-1] = 140.0  # one busy minute: the mean of three stays under 3x
    storm = normal.copy()
    storm[-3:] = 400.0
    calls = np.stack([normal, spiky, storm])
    errors = np.zeros_like(calls)
    errors[2, -3:] = 120.0
    throttles = np.zeros_like(calls)
    throttles[2, -3:] = 150.0
    found = minute_retry_storm(
        arrays(calls, errors=errors, throttles=throttles), flat_baseline(3, 40)
    )
    assert found.workloads.tolist() == [2]
    [record] = found.records()
    assert record["evidence"]["surge_ratio"] > 10
    assert record["evidence"]["failure_share_pct"] > 40
    assert str(found.since[0]) == "2026-12-07T10:07"  # the first of the three storm minutes
    assert record["money_at_stake"] > 0


def test_an_open_storm_is_kept_while_it_eases_and_ends_when_traffic_is_back():
    calls = np.full((1, T), 70.0)
    throttles = np.full((1, T), 30.0)  # 100 attempts, 2.5x: under the 3x that raises,
    data = arrays(calls, throttles=throttles)  # over the 2x that keeps an open alert
    base = flat_baseline(1, 40)
    assert len(minute_retry_storm(data, base)) == 0
    assert len(minute_retry_storm(data, base, ongoing=np.array([True]))) == 1
    calm = arrays(np.full((1, T), 40.0))
    assert len(minute_retry_storm(calm, base, ongoing=np.array([True]))) == 0


def test_a_few_quiet_minutes_do_not_end_an_open_storm():
    calls = np.full((1, T), 400.0)
    throttles = np.full((1, T), 300.0)
    calls[0, -3:] = throttles[0, -3:] = 0.0  # three minutes without a single call
    data = arrays(calls, errors=calls * 0.3, throttles=throttles)
    base = flat_baseline(1, 40)
    assert len(minute_retry_storm(data, base)) == 0  # judged on 3 minutes: nothing
    assert len(minute_retry_storm(data, base, ongoing=np.array([True]))) == 1


def test_a_runaway_in_calls_or_tokens_is_flagged_a_storm_is_not_a_runaway():
    calls = np.full((4, T), 30.0)
    calls[0, -3:] = 300.0  # 10x calls, all succeed: runaway
    tokens_loop = arrays(calls[1:2], tokens_per_call=12_000.0)  # same calls, 12x tokens
    errors = np.zeros_like(calls)
    calls[2, -3:] = 300.0
    errors[2, -3:] = 200.0  # the same surge, mostly failing: a storm
    data = arrays(calls, errors=errors)
    tokens = data.tokens.copy()
    tokens[1, -3:] = tokens_loop.tokens[0, -3:]
    data = MinuteArrays(
        data.minutes, data.invocations, tokens, data.errors, data.throttles, tokens * 5e-6
    )
    found = runaway(data, flat_baseline(4, 30))
    assert found.workloads.tolist() == [0, 1]
    assert minute_retry_storm(data, flat_baseline(4, 30)).workloads.tolist() == [2]


def test_a_burn_that_would_use_up_the_budget_within_a_day_is_a_runaway():
    calls = np.full((2, T), 30.0)
    calls[:, -3:] = 70.0  # 2.3x: not a volume runaway, but twice the usual cost
    data = arrays(calls)
    cost_per_minute = 70 * 1000 * 5e-6  # $0.35
    left = np.array([cost_per_minute * 60 * 10, cost_per_minute * 60 * 100])  # 10 h, 100 h
    found = runaway(data, flat_baseline(2, 30), budget_left=left)
    assert found.workloads.tolist() == [0]
    [record] = found.records()
    assert record["evidence"]["budget_burn"] == 1.0
    assert 9.5 < record["evidence"]["hours_to_budget"] < 10.5
    assert len(runaway(data, flat_baseline(2, 30), budget_left=np.array([np.nan, np.inf]))) == 0


def test_baseline_is_the_median_of_the_days_with_data_per_minute():
    hours = np.array([[60.0, 120.0, np.nan, 600.0], [np.nan] * 4])
    base = baseline_from_hours(hours, hours, hours, hours, hours)
    assert base.invocations.tolist() == [2.0, 0.0]  # median(60, 120, 600) / 60; no data: 0


def test_defaults_are_the_backtested_ones():
    # benchmarks/backtest_minutes.py prints precision and recall for exactly these
    assert MinuteThresholds() == MinuteThresholds(
        window_minutes=3,
        storm_ratio=3.0,
        storm_error_share=0.25,
        storm_min_excess=20.0,
        runaway_ratio=5.0,
        runaway_min_invocations=20.0,
        runaway_min_tokens=50_000.0,
        burn_hours=24.0,
        burn_ratio=2.0,
        hold=0.5,
        hold_minutes=10,
    )

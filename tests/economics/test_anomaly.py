"""Spend anomalies: weekday-aware, robust, with a money floor."""

from __future__ import annotations

import numpy as np
import pytest

from economics import daily_anomalies, hourly_anomalies, weekday_factors

DAYS = np.datetime64("2024-03-04") + np.arange(63)  # Monday; nine weeks
WEEKDAY = (DAYS.astype(np.int64) + 3) % 7


def weekly_pattern(weekday_cost=100.0, weekend_cost=30.0) -> np.ndarray:
    return np.where(WEEKDAY >= 5, weekend_cost, weekday_cost).astype(float)


def test_weekday_factors():
    factors = weekday_factors(weekly_pattern()[None, :], DAYS)
    mean = (5 * 100 + 2 * 30) / 7
    np.testing.assert_allclose(factors[0], [100 / mean] * 5 + [30 / mean] * 2)


def test_a_normal_monday_after_a_weekend_is_not_an_anomaly_but_a_busy_sunday_is():
    # DAYS[-1] is a Sunday: at $100 it is 3x a normal Sunday
    spend = np.vstack([weekly_pattern(), weekly_pattern()])
    spend[1, -1] = 100.0
    result = daily_anomalies(spend, DAYS)
    assert result.latest.tolist() == [False, True]
    assert result.expected[1, -1] == pytest.approx(30)
    assert result.excess[1, -1] == pytest.approx(70)


def test_the_money_floor_keeps_small_series_quiet():
    spend = weekly_pattern(1.0, 1.0)[None, :].repeat(2, axis=0)
    spend[:, -1] = 8.0  # 8x normal, but only $7 more
    assert not daily_anomalies(spend, DAYS, min_amount=10).latest.any()
    assert daily_anomalies(spend, DAYS, min_amount=5).latest.all()


def test_relative_floor_and_noise():
    rng = np.random.default_rng(1)
    spend = 1000 + rng.normal(0, 20, (50, DAYS.size))
    spend[:, -1] = 1200  # +20%: many sigmas, but under the 50% relative floor
    assert not daily_anomalies(spend, DAYS).latest.any()


def test_one_earlier_spike_does_not_hide_the_next():
    spend = weekly_pattern()[None, :].copy()
    spend[0, -8] = 1000.0  # last Saturday's incident
    spend[0, -1] = 300.0  # and today, Sunday, 10x
    assert daily_anomalies(spend, DAYS).latest[0]


def test_a_new_workload_is_not_scored_before_a_week_of_history():
    spend = np.zeros((1, DAYS.size))
    spend[0, -3:] = [100, 100, 1000]
    assert not daily_anomalies(spend, DAYS).latest[0]


def test_hourly_same_hour_of_previous_days():
    hours = np.datetime64("2024-03-04T00") + np.arange(8 * 24)
    profile = np.tile(np.r_[np.full(8, 2.0), np.full(16, 20.0)], 8)  # quiet nights
    spend = np.vstack([profile, profile])
    spend[1, -1] = 60.0  # 11 pm at $60 instead of $20
    result = hourly_anomalies(spend, hours)
    assert result.latest.tolist() == [False, True]
    assert result.expected[1, -1] == pytest.approx(20)
    assert result.times[-1] == hours[-1]

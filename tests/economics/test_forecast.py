"""Forecasts: hand-computed projections, budget dates, short histories and level shifts."""

from __future__ import annotations

import numpy as np
import pytest

from llmgov.economics import METHODS, forecast

DAYS = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-06-01"))  # 152 days
AS_OF = np.datetime64("2024-05-15")


def test_constant_spend_projects_the_constant():
    result = forecast(np.full((1, DAYS.size), 100.0), DAYS, AS_OF)
    assert result.month_to_date[0] == pytest.approx(1500)
    assert result.month_end[0] == pytest.approx(3100)
    assert result.month_end_low[0] == pytest.approx(3100)
    assert result.month_end_high[0] == pytest.approx(3100)
    assert result.next_30[0] == pytest.approx(3000)
    assert result.next_90[0] == pytest.approx(9000)
    np.testing.assert_allclose(result.daily_path[0], 100.0)
    assert METHODS[result.method[0]] == "trend_56"


def test_a_clean_linear_trend_is_extrapolated():
    spend = 100.0 + 2.0 * np.arange(DAYS.size)  # +$2 a day
    result = forecast(spend[None, :], DAYS, AS_OF)
    today = 100.0 + 2.0 * 135  # May 15 is day 135
    remaining = today + 2.0 * np.arange(1, 17)  # May 16..31
    exact = spend[121:136].sum() + remaining.sum()
    # the projection averages the linear fit (exact here) and the log-linear one (a little
    # above a straight line when extrapolated)
    assert exact <= result.month_end[0] <= exact * 1.01
    assert result.trend_per_day[0] == pytest.approx(2.0, rel=0.15)
    assert result.level[0] == pytest.approx(today + 2, rel=0.01)


def test_the_naive_run_rate_is_reported_for_comparison():
    spend = np.full((1, DAYS.size), 100.0)
    spend[0, 121:136] = 50.0  # May so far at $50 a day
    result = forecast(spend, DAYS, AS_OF)
    assert result.naive_month_end[0] == pytest.approx(50 * 31)


def test_budget_exhaustion_date_projected_and_already_past():
    spend = np.full((3, DAYS.size), 100.0)
    budgets = np.array([2000.0, 1000.0, np.nan])
    result = forecast(spend, DAYS, AS_OF, budgets)
    # $1,500 spent by the 15th; $2,000 reached on the 20th; $1,000 was reached on the 10th
    assert result.exhaustion_date[0] == np.datetime64("2024-05-20")
    assert result.exhaustion_date[1] == np.datetime64("2024-05-10")
    assert np.isnat(result.exhaustion_date[2])
    assert result.exhaustion_date_earliest[0] == np.datetime64("2024-05-20")  # no spread


def test_budget_not_reached_this_month():
    result = forecast(np.full((1, DAYS.size), 100.0), DAYS, AS_OF, budgets=5000.0)
    assert np.isnat(result.exhaustion_date[0])


def test_a_new_workload_is_projected_at_its_run_rate():
    spend = np.zeros((1, DAYS.size))
    spend[0, 133:136] = [40.0, 60.0, 50.0]  # three days of history up to AS_OF
    result = forecast(spend, DAYS, AS_OF)
    assert METHODS[result.method[0]] == "run_rate"
    assert result.history_days[0] == 3
    assert result.level[0] == pytest.approx(50)
    assert result.month_end[0] == pytest.approx(150 + 16 * 50)
    assert result.month_end_low[0] < result.month_end[0] < result.month_end_high[0]
    assert result.month_end_low[0] >= 150  # never below what is already spent
    assert np.all(result.daily_low <= result.daily_path)
    assert np.all(result.daily_path < result.daily_high)


def test_a_level_shift_is_refitted_after_it():
    rng = np.random.default_rng(7)
    spend = 100 + rng.normal(0, 3, DAYS.size)
    spend[-37:] += 200  # from 2024-04-25 on (20 days before AS_OF, inclusive of the 25th)
    result = forecast(spend[None, :], DAYS, AS_OF)
    assert result.level_shift_on[0] == np.datetime64("2024-04-25")
    assert METHODS[result.method[0]] == "trend_14"
    assert result.level[0] == pytest.approx(300, rel=0.05)


def test_a_steady_trend_is_not_a_level_shift():
    rng = np.random.default_rng(3)
    spend = 100 + 3 * np.arange(DAYS.size) + rng.normal(0, 5, DAYS.size)
    result = forecast(spend[None, :], DAYS, AS_OF)
    assert np.isnat(result.level_shift_on[0])
    assert METHODS[result.method[0]] == "trend_56"


def test_weekly_seasonality_is_kept_in_the_path():
    weekday = (DAYS.astype(np.int64) + 3) % 7
    spend = np.where(weekday >= 5, 20.0, 100.0)  # quiet weekends
    result = forecast(spend[None, :], DAYS, AS_OF)
    path_weekday = (result.path_days.astype(np.int64) + 3) % 7
    np.testing.assert_allclose(
        result.daily_path[0], np.where(path_weekday >= 5, 20, 100), atol=1e-9
    )


def test_one_outlying_day_does_not_move_the_projection_much():
    spend = np.full((1, DAYS.size), 100.0)
    spend[0, 130] = 5000.0  # an incident on May 10
    result = forecast(spend, DAYS, AS_OF)
    assert result.level[0] == pytest.approx(100, rel=0.05)


def test_missing_days_marked_unknown_are_filled_not_read_as_zero():
    spend = np.full((1, DAYS.size), 100.0)
    spend[0, 100:110] = 0.0
    known = np.ones_like(spend, dtype=bool)
    known[0, 100:110] = False
    result = forecast(spend, DAYS, AS_OF, known=known)
    assert result.level[0] == pytest.approx(100)


def test_never_spent_and_future_columns_ignored():
    spend = np.zeros((2, DAYS.size))
    spend[1, 136:] = 1e6  # after AS_OF: must not count
    result = forecast(spend, DAYS, AS_OF)
    assert result.month_end.tolist() == [0, 0]
    assert result.method.tolist() == [0, 0]
    assert result.history_days.tolist() == [0, 0]

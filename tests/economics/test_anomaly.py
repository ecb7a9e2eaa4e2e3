"""Spend anomalies: weekday-aware, robust, with a money floor."""

from __future__ import annotations

import numpy as np
import pytest

from llmgov.economics import daily_anomalies, hourly_anomalies, weekday_factors

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


# ---- lasting level shifts: alert on the step, then accept the new level ----------------

SHIFT_DAYS = np.datetime64("2024-01-01") + np.arange(140)  # a Monday; twenty weeks
STEP = 100  # the column where spend steps to its new level and stays there (a Wednesday)


def shifted_spend(factor: float, noise: float = 0.05, rows: int = 50, seed: int = 3):
    """`rows` workloads of $100 weekdays / $40 weekends with multiplicative noise, whose
    spend is multiplied by `factor` from `STEP` on; and that true level per day."""
    weekday = (SHIFT_DAYS.astype(np.int64) + 3) % 7
    level = np.where(weekday >= 5, 40.0, 100.0) * np.where(
        np.arange(SHIFT_DAYS.size) >= STEP, factor, 1.0
    )
    spend = level * np.random.default_rng(seed).lognormal(0, noise, (rows, SHIFT_DAYS.size))
    return spend, level


def scored_from_the_step(spend):
    """Every day from the step on, each against the days before it."""
    return daily_anomalies(spend, SHIFT_DAYS, eval_days=SHIFT_DAYS.size - STEP)


def flagged_days_after_step(result) -> list[int]:
    """The days after the step (0: the step day) on which any workload alerted."""
    return np.flatnonzero(result.is_anomaly.any(axis=0)).tolist()


@pytest.mark.parametrize("factor", [2.0, 3.0])
def test_a_lasting_step_up_alerts_on_its_day_then_becomes_the_new_normal(factor):
    spend, level = shifted_spend(factor)
    result = scored_from_the_step(spend)
    assert result.is_anomaly[:, 0].all()  # the step itself is the anomaly worth an alert
    # the next two days may still alert (one odd day is not yet a new level); from the
    # third on, the new level is normal: today's figures are days 0-2 and nothing after
    assert max(flagged_days_after_step(result)) <= 2
    # and the level expected is the new one, not the old one bent by a false trend
    ratio = result.expected[:, 3:] / level[STEP + 3 :]
    assert np.abs(np.median(ratio, axis=0) - 1).max() < 0.05


def test_a_cost_cut_never_alerts_and_its_new_level_is_learnt():
    # Only overspend alerts (`_judge` keeps excess > 0): a drop is good news for governance.
    spend, level = shifted_spend(0.5)
    result = scored_from_the_step(spend)
    assert flagged_days_after_step(result) == []
    assert (result.score[:, 0] < -3.5).all()  # the drop is seen, just not an alert
    ratio = result.expected[:, 3:] / level[STEP + 3 :]
    assert np.abs(np.median(ratio, axis=0) - 1).max() < 0.05


@pytest.mark.parametrize("factor", [0.5, 1.8])
@pytest.mark.parametrize("days_after", [3, 9, 18, 25])
def test_a_spike_soon_after_a_level_shift_is_still_found(factor, days_after):
    # The days before a shift must not widen the scale (nor bend the trend) for the weeks
    # they stay in the window: a 2.5x day on the new level is an anomaly, weekend or not.
    spend, _ = shifted_spend(factor)
    today = STEP + days_after
    spend = spend[:, : today + 1]
    spend[:, today] *= 2.5
    assert daily_anomalies(spend, SHIFT_DAYS[: today + 1]).latest.all()


def test_two_high_days_are_not_yet_a_new_level():
    spend, _ = shifted_spend(1.0)
    today = STEP + 2
    spend = spend[:, : today + 1]
    spend[:, STEP:] *= 3  # three days in a row at 3x: the third still alerts
    assert daily_anomalies(spend, SHIFT_DAYS[: today + 1]).latest.all()


def test_a_steady_climb_is_a_trend_not_a_level_shift():
    # +2% a day: the early days of the window lie far below the latest ones, as before a
    # step, but the trend fits them better, so today's expected cost is moved on by it.
    spend, level = shifted_spend(1.0)
    growth = np.exp(0.02 * (np.arange(SHIFT_DAYS.size) - STEP))
    result = scored_from_the_step(spend * growth)
    assert flagged_days_after_step(result) == []
    ratio = result.expected / (level * growth)[STEP:]
    assert np.abs(np.median(ratio, axis=0) - 1).max() < 0.05


def test_level_shift_scoring_is_the_same_one_workload_at_a_time():
    up, _ = shifted_spend(1.8, noise=0.15, rows=4, seed=5)
    down, _ = shifted_spend(0.5, noise=0.15, rows=4, seed=6)
    spend = np.vstack([up, down])
    together = daily_anomalies(spend, SHIFT_DAYS, eval_days=40)
    for row in range(spend.shape[0]):
        alone = daily_anomalies(spend[row : row + 1], SHIFT_DAYS, eval_days=40)
        np.testing.assert_allclose(alone.expected[0], together.expected[row])
        np.testing.assert_allclose(alone.scale[0], together.scale[row])

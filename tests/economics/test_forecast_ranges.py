"""Month-end ranges that earn their 90%: on generated flat, trending, autocorrelated (AR(1),
rho 0.9) and random-walk series, seeded, the range holds the actual month total about 90%
of the time; the range holds the point, widens with the horizon and with persistent noise;
growth is projected better than the run rate. No timing is asserted."""

from __future__ import annotations

import numpy as np
import pytest

from llmgov.economics import forecast
from llmgov.economics.ranges import t_factor

HISTORY = 91  # what governance.checks passes (HISTORY_DAYS)
MONTH = np.datetime64("2025-01")
# origins a week apart: one weekday, so each window's design (and its calibration) is shared
ORIGINS = [2, 9, 16, 23, 30]  # as-of days of January: 29, 22, 15, 8 and 1 days remain
PER_ORIGIN = 60  # 300 series a shape


def generate(rng, shape: str, n: int, n_days: int) -> np.ndarray:
    """`(n, n_days)` daily spend; the shapes of `benchmarks/backtest.py`, simplified."""
    t = np.arange(n_days, dtype=float)[None, :]
    level = np.exp(rng.uniform(np.log(20), np.log(2000), (n, 1)))
    weekly = np.where(t % 7 >= 5, rng.uniform(0.5, 1.0, (n, 1)), 1.0)
    noise = 1 + rng.uniform(0.05, 0.2, (n, 1)) * rng.standard_normal((n, n_days))
    if shape == "flat":
        path = noise
    elif shape in ("trending", "growing"):
        rate = rng.uniform(0.004, 0.015, (n, 1))
        if shape == "trending":
            rate = rate * np.where(rng.random((n, 1)) < 0.75, 1, -1)
        since = t - (n_days - 31)
        linear = (rng.random((n, 1)) < 0.5) & (shape == "trending")
        path = noise * np.where(linear, np.maximum(1 + rate * since, 0.2), np.exp(rate * since))
    elif shape == "ar1":
        sd = rng.uniform(0.08, 0.2, (n, 1))
        ar = np.empty((n, n_days))
        ar[:, 0] = sd[:, 0] * rng.standard_normal(n)
        shocks = sd * np.sqrt(1 - 0.81) * rng.standard_normal((n, n_days))
        for day in range(1, n_days):
            ar[:, day] = 0.9 * ar[:, day - 1] + shocks[:, day]
        path = np.maximum(1 + ar, 0.05)
    elif shape == "random walk":
        walk = np.cumsum(rng.uniform(0.015, 0.04, (n, 1)) * rng.standard_normal((n, n_days)), 1)
        path = np.exp(walk - walk[:, -32:-31])
    else:
        raise ValueError(shape)
    return level * weekly * path


def backtest(shape: str, seed: int) -> dict[str, np.ndarray]:
    """Coverage and absolute % errors of the month-end total, over ORIGINS x PER_ORIGIN."""
    rng = np.random.default_rng(seed)
    first = MONTH.astype("datetime64[D]")
    covered, core, naive = [], [], []
    for day in ORIGINS:
        as_of = first + day - 1
        days = as_of - HISTORY + 1 + np.arange(HISTORY + 31)
        spend = generate(rng, shape, PER_ORIGIN, days.size)
        actual = spend[:, (days >= first) & (days < first + 31)].sum(axis=1)
        # as governance.checks calls it: spend, days, the last whole day, budgets
        result = forecast(spend[:, :HISTORY], days[:HISTORY], as_of, np.full(PER_ORIGIN, np.nan))
        covered.append((result.month_end_low <= actual) & (actual <= result.month_end_high))
        core.append(np.abs(result.month_end - actual) / actual)
        naive.append(np.abs(result.naive_month_end - actual) / actual)
    return {
        "coverage": np.concatenate(covered),
        "core": np.concatenate(core),
        "naive": np.concatenate(naive),
    }


@pytest.mark.parametrize("shape", ["flat", "trending", "ar1", "random walk"])
def test_the_90_percent_range_holds_about_90_percent_of_month_totals(shape):
    # Before the ranges modelled the noise: flat 0.97-0.99 (too wide), random walk 0.65-0.73.
    found = backtest(shape, seed=20260101)["coverage"]
    assert found.size == len(ORIGINS) * PER_ORIGIN
    assert 0.84 <= found.mean() <= 0.96, f"{shape}: {found.mean():.3f}"


def test_growth_is_projected_better_than_the_run_rate():
    errors = backtest("growing", seed=7)
    assert errors["core"].mean() < 0.6 * errors["naive"].mean()


def _series(shape: str, seed: int = 3, n: int = 40):
    rng = np.random.default_rng(seed)
    days = np.datetime64("2025-01-10") - HISTORY + 1 + np.arange(HISTORY)
    return generate(rng, shape, n, HISTORY), days


@pytest.mark.parametrize("shape", ["flat", "trending", "ar1", "random walk", "growing"])
def test_every_range_holds_its_point_and_widens_with_the_horizon(shape):
    spend, days = _series(shape)
    result = forecast(spend, days, days[-1])
    for name in ("month_end", "next_30", "next_90"):
        low, point, high = (getattr(result, name + s) for s in ("_low", "", "_high"))
        assert np.all(low <= point) and np.all(point <= high), name
        assert np.all(high > low), name  # noisy series: a range, not a point
    rest = result.month_end_high - result.month_end_low  # 21 days remain after Jan 10
    thirty = result.next_30_high - result.next_30_low
    ninety = result.next_90_high - result.next_90_low
    assert np.all(rest < thirty) and np.all(thirty < ninety)
    assert np.all(result.month_end_low >= result.month_to_date)  # spent is spent
    assert np.all(result.daily_low <= result.daily_path)
    assert np.all(result.daily_path <= result.daily_high)


def test_the_month_end_range_is_for_the_whole_month():
    """Spent so far plus the projected rest (21 days after Jan 10), and a range about that."""
    spend, days = _series("random walk")
    result = forecast(spend, days, days[-1])
    spent = spend[:, -10:].sum(axis=1)  # January 1-10
    np.testing.assert_allclose(result.month_to_date, spent)
    np.testing.assert_allclose(result.month_end, spent + result.daily_path[:, :21].sum(axis=1))
    # the range is the rest's, shifted by what is spent: as wide as the projected days alone
    assert np.all(result.month_end_low >= spent)
    rest_width = result.month_end_high - result.month_end_low
    assert np.all(rest_width > 0.01 * (result.month_end - spent))


def test_persistent_noise_widens_the_range_of_a_sum_more_than_white_noise():
    """Same one-day scale, different memory: a random walk's 30-day range is several times
    wider relative to its next day than white noise's (the sum of remembered errors)."""
    rng = np.random.default_rng(11)
    n = 200
    days = np.datetime64("2025-01-01") + np.arange(HISTORY)
    white = 1000 + 20 * rng.standard_normal((n, HISTORY))
    walk = 1000 + np.cumsum(20 * rng.standard_normal((n, HISTORY)), axis=1)

    def ratio(spend):
        result = forecast(spend, days, days[-1])
        return np.median((result.next_30_high - result.next_30_low) / result.next_day_sd)

    assert ratio(walk) > 3 * ratio(white)


def test_short_histories_get_a_student_t_range():
    days = np.datetime64("2025-01-01") + np.arange(HISTORY)
    spend = np.zeros((2, HISTORY))
    spend[0, -3:] = [90.0, 110.0, 100.0]  # three days: 2 degrees of freedom
    spend[1, -7:] = [90.0, 110.0, 100.0, 90.0, 110.0, 100.0, 100.0]  # seven: 6
    result = forecast(spend, days, days[-1])
    half = (result.next_30_high - result.next_30_low) / 2
    sigma = np.array([10.0, np.std(spend[1, -7:], ddof=1)])
    counts = np.array([3, 7])
    expected = 1.645 * t_factor(1.645, counts - 1) * sigma * np.sqrt(30 + 900 / counts)
    np.testing.assert_allclose(half, expected, rtol=1e-9)


@pytest.mark.parametrize(("df", "quantile"), [(1, 6.314), (2, 2.920), (3, 2.353), (10, 1.812)])
def test_t_factor_gives_student_t_quantiles(df, quantile):
    assert 1.645 * float(t_factor(1.645, df)) == pytest.approx(quantile, rel=0.01)


def test_ranges_are_deterministic():
    spend, days = _series("random walk")
    first = forecast(spend, days, days[-1])
    again = forecast(spend.copy(), days, days[-1])
    np.testing.assert_array_equal(first.month_end_high, again.month_end_high)

"""The entry point: `analyse` over every workload, thresholds, and input validation."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from llmgov.economics import DETECTION_KINDS, DailyArrays, HourlyArrays, Thresholds, analyse

DAYS = np.datetime64("2024-04-01") + np.arange(70)


def test_analyse_one_pass_and_as_of():
    rng = np.random.default_rng(5)
    cost = 100 * rng.lognormal(0, 0.05, (3, DAYS.size))
    cost[2, -1] = 1000.0  # the last day only: invisible as of the day before
    daily = DailyArrays(days=DAYS, cost=cost, workload_ids=np.array([7, 8, 9]))
    hours = (DAYS[-1] + 1).astype("datetime64[h]") - 48 + np.arange(48)
    hourly = HourlyArrays(hours=hours, cost=np.full((3, 48), 4.0))

    result = analyse(daily, hourly, budgets=np.array([3000.0, np.nan, 3000.0]))
    assert list(result.detections) == list(DETECTION_KINDS)
    assert result.detections["spend_anomaly"].workloads.tolist() == [2]
    assert result.workload_ids.tolist() == [7, 8, 9]
    assert result.flagged()[0][:2] == ("spend_anomaly", 2)

    earlier = analyse(daily, hourly, as_of=DAYS[-2])
    assert earlier.as_of == DAYS[-2]
    assert len(earlier.detections["spend_anomaly"]) == 0
    assert earlier.change_periods[1] == (DAYS[-8], DAYS[-2])


def test_analyse_one_day_and_no_spend():
    daily = DailyArrays(days=DAYS[:1], cost=np.zeros((1, 1)))
    result = analyse(daily)
    assert result.forecast.month_end.tolist() == [0.0]
    assert all(len(found) == 0 for found in result.detections.values())


def test_thresholds_from_governance_style_mappings():
    thresholds = Thresholds.from_mapping(
        {"anomaly_min_amount": Decimal("25"), "token_growth_pct": 30.0, "stale_after_hours": 26}
    )
    assert thresholds.anomaly_min_amount == 25.0 and thresholds.token_growth_pct == 30.0
    rows = [{"token_growth_pct": 10}, {}, {"token_growth_pct": 40, "usage_flat_pct": 5}]
    merged = Thresholds.per_workload(rows)
    assert merged.token_growth_pct.tolist() == [10.0, 15.0, 40.0]
    assert merged.anomaly_z == 3.5
    assert merged.usage_flat_pct.tolist() == [np.inf, np.inf, 5.0]


def test_inputs_are_validated():
    with pytest.raises(ValueError, match="consecutive"):
        DailyArrays(days=DAYS[[0, 2]], cost=np.zeros((1, 2)))
    with pytest.raises(ValueError, match="shape"):
        DailyArrays(days=DAYS[:3], cost=np.zeros((1, 3)), requests=np.zeros((1, 4)))
    daily = DailyArrays(days=DAYS, cost=np.zeros((1, DAYS.size)))
    with pytest.raises(ValueError, match="outside"):
        daily.through(DAYS[-1] + 1)

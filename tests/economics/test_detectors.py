"""Each detector against small hand-built cases with hand-computed expectations."""

from __future__ import annotations

import numpy as np
import pytest

from llmgov.economics import (
    DailyArrays,
    GpuArrays,
    HourlyArrays,
    estimate_drift,
    fan_out_growth,
    idle_gpu,
    retry_storm,
    token_growth,
    unit_cost_drift,
)

DAYS_28 = np.datetime64("2024-03-04") + np.arange(28)  # a Monday, four whole weeks
HOURS_8_DAYS = np.datetime64("2024-03-04T00") + np.arange(8 * 24)


def hourly_steady(n: int = 2) -> dict[str, np.ndarray]:
    """100 calls an hour, 1 error, no throttles, $1 an hour, for 8 days."""
    shape = (n, HOURS_8_DAYS.size)
    return {
        "requests": np.full(shape, 100.0),
        "errors": np.full(shape, 1.0),
        "throttles": np.zeros(shape),
        "cost": np.full(shape, 1.0),
    }


def test_retry_storm_fires_on_its_first_hour():
    series = hourly_steady()
    # last hour: 500 calls, 150 errors, 100 throttled, $5; row 1 surges without failures
    series["requests"][:, -1] = 500
    series["errors"][0, -1] = 150
    series["throttles"][0, -1] = 100
    series["cost"][:, -1] = 5
    found = retry_storm(HourlyArrays(hours=HOURS_8_DAYS, **series))

    assert found.workloads.tolist() == [0]
    # attempts 600 vs 100: x6; failures 250/600; money: $4 excess so far + 24 h x $4
    assert found.evidence["surge_ratio"][0] == pytest.approx(6.0)
    assert found.evidence["failure_share_pct"][0] == pytest.approx(100 * 250 / 600)
    assert found.evidence["baseline_failure_share_pct"][0] == pytest.approx(1.0)
    assert found.evidence["hours"][0] == 1
    assert found.money_at_stake[0] == pytest.approx(4 + 24 * 4)
    assert found.since[0] == HOURS_8_DAYS[-1]


def test_retry_storm_over_three_hours_reports_its_start_and_spend_so_far():
    series = hourly_steady(1)
    for lag in (1, 2, 3):
        series["requests"][0, -lag] = 500
        series["errors"][0, -lag] = 200
        series["cost"][0, -lag] = 5
    found = retry_storm(HourlyArrays(hours=HOURS_8_DAYS, **series))
    assert found.workloads.tolist() == [0]
    assert found.evidence["hours"][0] == 3
    assert found.since[0] == HOURS_8_DAYS[-3]
    assert found.money_at_stake[0] == pytest.approx(3 * 4 + 24 * 4)


def test_retry_storm_ignores_a_storm_that_ended():
    series = hourly_steady(1)
    series["requests"][0, -2] = 500
    series["errors"][0, -2] = 200
    assert len(retry_storm(HourlyArrays(hours=HOURS_8_DAYS, **series))) == 0


def daily_usage(n: int = 2) -> dict[str, np.ndarray]:
    shape = (n, DAYS_28.size)
    return {
        "requests": np.full(shape, 1000.0),
        "input_tokens": np.full(shape, 800_000.0),
        "output_tokens": np.full(shape, 200_000.0),
        "cost": np.full(shape, 100.0),
    }


def test_token_growth_sustained_week_after_week():
    usage = daily_usage()
    per_request = np.repeat([1000.0, 1100.0, 1200.0, 1300.0], 7)  # tokens per request
    usage["input_tokens"][0] = 0.8 * per_request * 1000
    usage["output_tokens"][0] = 0.2 * per_request * 1000
    found = token_growth(DailyArrays(days=DAYS_28, **usage))

    assert found.workloads.tolist() == [0]
    assert found.evidence["tokens_per_request_before"][0] == pytest.approx(1000)
    assert found.evidence["tokens_per_request_now"][0] == pytest.approx(1300)
    assert found.evidence["growth_pct"][0] == pytest.approx(30)
    # the extra 300 of 1300 tokens, on $100 a day, for 30 days
    assert found.money_at_stake[0] == pytest.approx(300 / 1300 * 100 * 30)


def test_token_growth_ignores_one_heavy_day_and_a_fall_back():
    usage = daily_usage()
    usage["input_tokens"][0, -1] *= 5  # one day of long prompts
    per_request = np.repeat([1000.0, 1300.0, 1000.0, 1300.0], 7)  # up, down, up: not sustained
    usage["input_tokens"][1] = per_request * 1000
    usage["output_tokens"][1] = 0
    assert len(token_growth(DailyArrays(days=DAYS_28, **usage))) == 0


def test_fan_out_growth_against_the_three_weeks_before():
    usage = daily_usage()
    usage["upstream_requests"] = np.full((2, 28), 1000.0)
    usage["requests"][0, -7:] = 3000  # 2 calls per request before (row 1 stays at 1)
    usage["requests"][0, :-7] = 2000
    usage["cost"][0, -7:] = 60
    found = fan_out_growth(DailyArrays(days=DAYS_28, **usage))

    assert found.workloads.tolist() == [0]
    assert found.evidence["calls_per_request_before"][0] == pytest.approx(2)
    assert found.evidence["calls_per_request_now"][0] == pytest.approx(3)
    assert found.evidence["growth_pct"][0] == pytest.approx(50)
    assert found.money_at_stake[0] == pytest.approx((1 - 2 / 3) * 60 * 30)


def test_fan_out_growth_needs_an_upstream_metric():
    usage = daily_usage()
    usage["requests"][:, -7:] = 3000
    assert len(fan_out_growth(DailyArrays(days=DAYS_28, **usage))) == 0


def test_unit_cost_drift_spend_up_usage_flat():
    usage = daily_usage()
    usage["cost"][:, -7:] = 130  # both rows spend 30% more...
    usage["input_tokens"][1, -7:] *= 1.3  # ...but row 1 also uses 30% more tokens
    usage["output_tokens"][1, -7:] *= 1.3
    found = unit_cost_drift(DailyArrays(days=DAYS_28, **usage))

    assert found.workloads.tolist() == [0]
    assert found.evidence["spend_growth_pct"][0] == pytest.approx(30)
    assert found.evidence["usage_growth_pct"][0] == pytest.approx(0)
    assert found.evidence["cost_per_1k_tokens_before"][0] == pytest.approx(0.1)
    assert found.evidence["cost_per_1k_tokens_now"][0] == pytest.approx(0.13)
    # 3e-5 more per token on 1e6 tokens a day, for 30 days
    assert found.money_at_stake[0] == pytest.approx(0.03 * 1000 * 30)


def test_unit_cost_drift_strict_usage_flat():
    usage = daily_usage()
    usage["cost"][:, -7:] = 160
    usage["input_tokens"][0, -7:] *= 1.1  # usage +8% (input is 80% of tokens)
    found = unit_cost_drift(DailyArrays(days=DAYS_28, **usage), usage_flat_pct=5)
    assert found.workloads.tolist() == [1]


def test_idle_gpu_prices_the_idle_hours():
    hours = np.datetime64("2024-03-04T00") + np.arange(168)
    utilisation = np.full((2, 168), 50.0)
    utilisation[0, :100] = 5.0  # 100 idle hours
    gpu = GpuArrays(
        hours=hours,
        instance_hours=np.ones((2, 168)),
        gpu_hours=np.full((2, 168), 4.0),
        utilisation_pct=utilisation,
        cost=np.full((2, 168), 4.0),  # $4 an instance-hour
    )
    found = idle_gpu(gpu)

    assert found.workloads.tolist() == [0]
    assert found.evidence["idle_hours"][0] == 100
    assert found.evidence["idle_cost"][0] == pytest.approx(400)
    assert found.evidence["mean_utilisation_pct"][0] == pytest.approx((100 * 5 + 68 * 50) / 168)
    assert found.money_at_stake[0] == pytest.approx(400 * 730 / 168)


def test_idle_gpu_needs_enough_idle_hours():
    hours = np.datetime64("2024-03-04T00") + np.arange(168)
    utilisation = np.full((1, 168), 50.0)
    utilisation[0, :23] = 0.0
    gpu = GpuArrays(
        hours=hours,
        instance_hours=np.ones((1, 168)),
        utilisation_pct=utilisation,
        cost=np.full((1, 168), 4.0),
    )
    assert len(idle_gpu(gpu)) == 0


def test_estimate_drift_on_the_billed_days_only():
    days = DAYS_28[:14]
    billed = np.full((2, 14), 100.0)
    estimated = np.array([np.full(14, 70.0), np.full(14, 95.0)])
    has_billed = np.ones((2, 14), dtype=bool)
    has_billed[:, -2:] = False  # billing lags two days
    billed[:, -2:] = 0
    found = estimate_drift(
        DailyArrays(
            days=days,
            cost=billed,
            billed_cost=billed,
            estimated_cost=estimated,
            has_billed=has_billed,
        )
    )

    assert found.workloads.tolist() == [0]
    assert found.evidence["days"][0] == 12
    assert found.evidence["billed"][0] == pytest.approx(1200)
    assert found.evidence["estimated"][0] == pytest.approx(840)
    assert found.evidence["drift_pct"][0] == pytest.approx(-30)
    assert found.money_at_stake[0] == pytest.approx(360 * 30 / 12)


def test_thresholds_can_differ_per_workload():
    usage = daily_usage()
    usage["cost"][:, -7:] = 130
    found = unit_cost_drift(DailyArrays(days=DAYS_28, **usage), drift_pct=np.array([50.0, 20.0]))
    assert found.workloads.tolist() == [1]


def test_records_are_plain_numbers():
    usage = daily_usage()
    usage["cost"][0, -7:] = 130
    found = unit_cost_drift(DailyArrays(days=DAYS_28, **usage))
    [record] = found.records(workload_ids=np.array([11, 12]))
    assert record["workload_id"] == 11 and record["row"] == 0
    assert isinstance(record["money_at_stake"], float)
    assert record["evidence"]["spend_growth_pct"] == pytest.approx(30)

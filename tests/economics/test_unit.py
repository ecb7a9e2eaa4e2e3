"""Unit economics and the reconciliation of estimates with the bill, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from llmgov.economics import (
    DailyArrays,
    GpuArrays,
    self_hosted_cost_per_mtok,
    traffic_shape,
    unit_costs,
)
from llmgov.economics.reconcile import reconcile

DAYS = np.datetime64("2024-03-01") + np.arange(30)


def test_unit_costs_per_token_request_and_upstream_request():
    ones = np.ones((2, 30))
    daily = DailyArrays(
        days=DAYS,
        cost=10.0 * ones,  # $300 over the window
        input_tokens=800_000 * ones,
        output_tokens=200_000 * ones,
        requests=1000 * ones,
        errors=10 * ones,
        upstream_requests=np.vstack([250 * ones[0], 0 * ones[1]]),
    )
    unit = unit_costs(daily, output_price_ratio=np.array([1.0, 5.0]))
    assert unit.cost_per_1k_tokens.tolist() == pytest.approx([0.01, 0.01])
    # ratio 5: 300 = p x (24e6 + 5 x 6e6) -> p = 300 / 54e6 per input token
    per_input = 300 / 54e6
    assert unit.cost_per_1k_input_tokens.tolist() == pytest.approx([0.01, 1000 * per_input])
    assert unit.cost_per_1k_output_tokens[1] == pytest.approx(5000 * per_input)
    assert unit.cost_per_request.tolist() == pytest.approx([0.01, 0.01])
    assert unit.cost_per_upstream_request[0] == pytest.approx(0.04)
    assert unit.calls_per_upstream_request[0] == pytest.approx(4)
    assert unit.tokens_per_request[0] == pytest.approx(1000)
    assert unit.error_share[0] == pytest.approx(0.01)
    assert unit.has_upstream.tolist() == [True, False]
    assert unit.cost_per_upstream_request[1] == 0  # undefined: 0, with has_upstream False


def test_self_hosted_cost_per_million_tokens_is_on_the_reservation():
    hours = np.datetime64("2024-03-01T00") + np.arange(168)
    busy = np.zeros((1, 168))
    busy[0, :42] = 80.0  # busy a quarter of the week, idle the rest
    gpu = GpuArrays(
        hours=hours,
        instance_hours=np.ones((1, 168)),
        gpu_hours=np.full((1, 168), 4.0),
        utilisation_pct=busy,
        cost=np.full((1, 168), 5.0),  # $5 an instance-hour
        tokens_served=np.where(busy > 0, 2e6, 0.0),  # 84M tokens, all in busy hours
    )
    daily = DailyArrays(days=DAYS, cost=np.zeros((1, 30)))
    unit = unit_costs(daily, gpu)
    # every provisioned hour counts: 168 x $5 / 84M tokens; busy hours alone would say 42 x $5
    assert unit.self_hosted_cost[0] == pytest.approx(840)
    assert unit.self_hosted_cost_per_mtok[0] == pytest.approx(840 / 84)
    assert unit.gpu_utilisation_pct[0] == pytest.approx(20)
    assert self_hosted_cost_per_mtok(168, 5.0, 84e6) == pytest.approx(10)
    assert self_hosted_cost_per_mtok(168, 5.0, 0.0) == 0


def test_traffic_shape():
    hourly = np.tile(np.r_[np.full(12, 1800.0), np.full(12, 5400.0)], 14)[None, :]
    daily = np.full((1, 30), 86400.0)
    shape = traffic_shape(hourly, daily, peak_quantile=1.0)
    assert shape.mean_tokens_per_second[0] == pytest.approx(1.0)
    assert shape.peak_tokens_per_second[0] == pytest.approx(1.5)
    assert shape.peak_to_mean[0] == pytest.approx(1.5)
    assert shape.daily_cv[0] == 0
    assert shape.monthly_tokens[0] == pytest.approx(86400 * 730 / 24)


def test_reconcile_scales_unbilled_estimates_by_the_recent_bill():
    billed = np.full((3, 30), 100.0)
    estimated = np.vstack([np.full(30, 50.0), np.full(30, 98.0), np.full(30, 50.0)])
    has_billed = np.ones((3, 30), dtype=bool)
    has_billed[:, -2:] = False
    has_billed[2] = False  # never billed: the estimate is all there is
    billed[~has_billed] = 0
    cost = np.where(has_billed, billed, estimated)
    daily = DailyArrays(
        days=DAYS, cost=cost, billed_cost=billed, estimated_cost=estimated, has_billed=has_billed
    )
    result = reconcile(daily)
    # row 0: estimates are half the bill -> unbilled days x2; row 1: within 5%, left alone
    assert result.factor.tolist() == pytest.approx([2.0, 1.0, 1.0])
    assert result.cost[0, -2:].tolist() == [100.0, 100.0]
    assert result.cost[1, -2:].tolist() == [98.0, 98.0]
    assert result.cost[2].tolist() == [50.0] * 30
    assert daily.cost[0, -1] == 50.0  # the input is not modified

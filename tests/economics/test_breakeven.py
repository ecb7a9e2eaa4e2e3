"""Break-even between Bedrock and self-hosting, by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmgov.economics import break_even, people_monthly_cost
from llmgov.economics.breakeven import HOURS_PER_MONTH, SECONDS_PER_MONTH

# $1 / $2 per million input / output tokens, a quarter of the tokens are output: $1.25/MTok
PRICES = {"output_share": 0.25, "price_input_per_mtok": 1.0, "price_output_per_mtok": 2.0}


def test_monthly_costs_at_a_volume():
    result = break_even(
        1e11,
        **PRICES,
        throughput_per_instance=1000.0,
        instance_hourly_price=10.0,
        peak_to_mean=2.0,
        target_utilisation=0.5,
    )
    assert float(result.bedrock_monthly) == pytest.approx(1e11 * 1.25e-6)  # $125,000
    peak_output_rate = 1e11 * 0.25 / SECONDS_PER_MONTH * 2  # 19,025.9 tokens/s
    assert float(result.instances) == math.ceil(peak_output_rate / 500) == 39
    assert float(result.self_hosted_infra_monthly) == pytest.approx(39 * 10 * 730)
    assert float(result.self_hosted_people_monthly) == pytest.approx(180000 * 1.5 / 12)
    assert float(result.self_hosted_monthly) == pytest.approx(284700 + 22500)
    assert float(result.savings_monthly) == pytest.approx(125000 - 307200)
    # an instance full at 50% carries 2.628e9 tokens a month for $7,300: $2,778 at $1.25/MTok
    assert not bool(result.breaks_even)
    assert math.isnan(float(result.break_even_monthly_tokens))


def test_break_even_volume():
    result = break_even(
        1e9,
        **PRICES,
        throughput_per_instance=1000.0,
        instance_hourly_price=2.0,
        peak_to_mean=2.0,
        target_utilisation=0.5,
    )
    # per full instance: 2.628e9 tokens x $1.25e-6 = $3,285 vs $1,460: margin $1,825
    # people $22,500 -> 13 instances; break-even at (13 x 1,460 + 22,500) / 1.25e-6
    assert bool(result.breaks_even)
    assert float(result.break_even_monthly_tokens) == pytest.approx(41480 / 1.25e-6)
    at_break_even = break_even(
        41480 / 1.25e-6,
        **PRICES,
        throughput_per_instance=1000.0,
        instance_hourly_price=2.0,
        peak_to_mean=2.0,
        target_utilisation=0.5,
    )
    assert float(at_break_even.instances) == 13
    assert float(at_break_even.bedrock_monthly) == pytest.approx(
        float(at_break_even.self_hosted_monthly)
    )


def test_existing_ml_infrastructure_lowers_people_cost_and_break_even():
    result = break_even(
        1e9,
        **PRICES,
        throughput_per_instance=1000.0,
        instance_hourly_price=2.0,
        peak_to_mean=2.0,
        target_utilisation=0.5,
        ml_infrastructure=True,
    )
    assert float(result.self_hosted_people_monthly) == pytest.approx(3750)
    assert float(result.break_even_monthly_tokens) == pytest.approx((3 * 1460 + 3750) / 1.25e-6)


def test_sensitivity_to_volume_and_peak():
    result = break_even(
        1e11,
        **PRICES,
        throughput_per_instance=1000.0,
        instance_hourly_price=10.0,
        peak_to_mean=2.0,
        target_utilisation=0.5,
    )
    np.testing.assert_allclose(result.volume_factors, [0.5, 1.0, 1.5])
    np.testing.assert_allclose(result.bedrock_by_volume, [62500, 125000, 187500])
    instances = [math.ceil(v * 0.25 / SECONDS_PER_MONTH * 2 / 500) for v in (5e10, 1e11, 1.5e11)]
    np.testing.assert_allclose(
        result.self_hosted_by_volume, [n * 10 * HOURS_PER_MONTH + 22500 for n in instances]
    )
    np.testing.assert_allclose(result.peak_to_mean_values, [1.0, 2.0, 4.0])
    assert (
        result.self_hosted_by_peak[0]
        < result.self_hosted_by_peak[1]
        < (result.self_hosted_by_peak[2])
    )


def test_vectorised_over_workloads():
    result = break_even(
        np.array([1e9, 1e11]),
        **PRICES,
        throughput_per_instance=1000.0,
        instance_hourly_price=np.array([2.0, 10.0]),
        peak_to_mean=2.0,
        target_utilisation=0.5,
    )
    assert result.breaks_even.tolist() == [True, False]
    assert result.bedrock_by_volume.shape == (2, 3)


def test_people_cost():
    assert float(people_monthly_cost(240000, False)) == pytest.approx(30000)
    assert float(people_monthly_cost(240000, True)) == pytest.approx(5000)

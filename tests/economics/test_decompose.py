"""Why spend changed: LMDI effects by hand, and the zero cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmgov.economics import DECOMPOSITION_METHODS, EFFECTS, PeriodTotals, decompose
from llmgov.economics.decompose import log_mean


def totals(cost, requests, errors, tokens) -> PeriodTotals:
    return PeriodTotals(
        *(np.atleast_1d(np.asarray(v, dtype=float)) for v in (cost, requests, errors, tokens))
    )


def test_pure_volume_pure_price_pure_intensity():
    before = totals([100, 100, 100], [1000, 1000, 1000], [0, 0, 0], [1e6, 1e6, 1e6])
    after = totals([200, 200, 200], [2000, 1000, 1000], [0, 0, 0], [2e6, 1e6, 2e6])
    # row 0: twice the requests; row 1: twice the price per token; row 2: twice the tokens
    # per request at the same price per token
    result = decompose(before, after)
    np.testing.assert_allclose(result.volume, [100, 0, 0], atol=1e-9)
    np.testing.assert_allclose(result.price_mix, [0, 100, 0], atol=1e-9)
    np.testing.assert_allclose(result.intensity, [0, 0, 100], atol=1e-9)
    np.testing.assert_allclose(result.retries, 0, atol=1e-9)
    assert [EFFECTS[d] for d in result.driver] == ["volume", "price_mix", "intensity"]


def test_mixed_change_by_hand():
    # before: 1000 good requests, no errors, 1,000 tokens each, $0.10 per 1k tokens
    # after: 1200 calls of which 200 failed (1000 good), 1,500 tokens per call, $0.12 per 1k
    before = totals(100.0, 1000, 0, 1e6)
    after = totals(1200 * 1500 * 0.12 / 1000, 1200, 200, 1200 * 1500)
    result = decompose(before, after)
    weight = (after.cost[0] - 100) / math.log(after.cost[0] / 100)
    assert result.change[0] == pytest.approx(216 - 100)
    assert result.volume[0] == pytest.approx(0, abs=1e-9)  # 1000 good requests both times
    assert result.retries[0] == pytest.approx(weight * math.log(1.2))
    assert result.intensity[0] == pytest.approx(weight * math.log(1.5))
    assert result.price_mix[0] == pytest.approx(weight * math.log(1.2))
    effects = result.volume + result.retries + result.intensity + result.price_mix
    assert effects[0] == pytest.approx(result.change[0], rel=1e-12)


def test_zero_cases_never_give_nan():
    before = totals([0, 0, 50, 80, 10], [0, 0, 10, 0, 5], [0, 0, 0, 0, 5], [0, 0, 1e5, 0, 100])
    after = totals([0, 70, 0, 90, 20], [0, 10, 0, 0, 10], [0, 0, 0, 0, 0], [0, 1e5, 0, 0, 500])
    result = decompose(before, after)
    methods = [DECOMPOSITION_METHODS[m] for m in result.method]
    # nothing; new; stopped; billed with no usage data; every call failed before
    assert methods == [
        "no_spend",
        "new_or_stopped",
        "new_or_stopped",
        "no_usage_data",
        "no_usage_data",
    ]
    np.testing.assert_allclose(result.volume[:3], [0, 70, -50])
    np.testing.assert_allclose(result.unexplained[3:], [10, 10])
    assert np.isfinite(result.effects()).all()
    np.testing.assert_allclose(result.effects().sum(axis=1), result.change)


def test_log_mean():
    assert log_mean(np.array([2.0]), np.array([2.0]))[0] == 2.0
    assert log_mean(np.array([4.0]), np.array([1.0]))[0] == pytest.approx(3 / math.log(4))

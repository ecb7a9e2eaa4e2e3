"""Near-real-time estimates reconciled with the bill.

Billing (Cost Explorer, CUR) is the truth but arrives 8-48 hours late; the token-based
estimate is there within minutes but can be off (missing cache prices, a model not in the
price list, discounts). Until billing arrives, a day's spend is its estimate corrected by how
far estimates have been from the bill lately for that workload, so a systematic estimate
error neither shows up as a spike on the unbilled days nor bends the projection.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TypedDict, Unpack

import numpy as np

from llmgov.economics._numeric import FloatArray, IndexArray, ratio
from llmgov.economics.series import DailyArrays


@dataclass(frozen=True, eq=False)
class Reconciliation:
    """- `cost`: `(W, D)` billed where billed, else estimate x `factor`.
    - `factor`: `(W,)` billed / estimated over the recent days that have both, clipped to
      `bounds`; 1 when there are fewer than `min_days` such days or when it is within
      `tolerance` of 1 (estimates that close to the bill are left as they are).
    - `days`: `(W,)` int, the days the factor was measured on."""

    cost: FloatArray
    factor: FloatArray
    days: IndexArray


class ReconcileOptions(TypedDict, total=False):
    """The keyword options of `reconcile`, for `reconciled`."""

    window_days: int
    min_days: int
    bounds: tuple[float, float]
    tolerance: float


def reconcile(
    daily: DailyArrays,
    *,
    window_days: int = 28,
    min_days: int = 3,
    bounds: tuple[float, float] = (0.2, 5.0),
    tolerance: float = 0.05,
) -> Reconciliation:
    """Spend per day with unbilled days taken from the calibrated estimate (see module)."""
    n_days = daily.n_days
    columns = slice(max(n_days - window_days, 0), n_days)
    both = daily.has_billed[:, columns] & (daily.estimated_cost[:, columns] > 0)
    billed = np.where(both, daily.billed_cost[:, columns], 0.0).sum(axis=1)
    estimated = np.where(both, daily.estimated_cost[:, columns], 0.0).sum(axis=1)
    days: IndexArray = np.count_nonzero(both, axis=1)
    measured = (days >= min_days) & (billed > 0)
    factor = np.where(measured, np.clip(ratio(billed, estimated), *bounds), 1.0)
    factor[np.abs(factor - 1) <= tolerance] = 1.0  # estimates within 5% of the bill: as is
    # By contract `cost` is the estimate wherever billing has not arrived, so only rows with
    # a correction and an unbilled, estimated day change (usually a few recent days).
    rows = np.flatnonzero(factor != 1.0)
    cost = daily.cost
    if rows.size:
        unbilled = ~daily.has_billed[rows]
        unbilled_columns = np.flatnonzero(unbilled.any(axis=0))  # usually the last day or two
        if unbilled_columns.size:
            cost = daily.cost.copy()
            cells = np.ix_(rows, unbilled_columns)
            estimated = daily.estimated_cost[cells]
            correct = unbilled[:, unbilled_columns] & (estimated != 0)
            cost[cells] = np.where(correct, estimated * factor[rows, None], cost[cells])
    return Reconciliation(cost, factor, days)


def reconciled(daily: DailyArrays, **options: Unpack[ReconcileOptions]) -> DailyArrays:
    """`daily` with `cost` replaced by the reconciled spend (see `reconcile`)."""
    return replace(daily, cost=reconcile(daily, **options).cost)


__all__ = ["ReconcileOptions", "Reconciliation", "reconcile", "reconciled"]

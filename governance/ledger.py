"""The ledger's governance rules, one copy each, read by every surface.

- **Budget status** (`budget_status`): what the checks alert on, what `/llm-cost` and the
  digest say about a budget. One of:

  | status | when |
  |---|---|
  | `no_budget` | the workload (or scope) has no monthly budget |
  | `exceeded` | month-to-date spend ≥ the budget |
  | `projected_overrun` | the month-end projection > budget × (1 + `projection_tolerance`) |
  | `at_risk` | month-to-date ≥ `budget_warning_ratio` × budget, or the projection's high end > budget |
  | `ok` | none of the above |

  The checks raise a budget finding exactly for `exceeded` (`budget_exceeded`) and
  `projected_overrun` (`budget_projected_overrun`); `at_risk` is shown where the spend is
  read (`/llm-cost`, the digest), not posted as an alert.

The billed facts' rules (charge kinds, one source per account and day, one currency) are in
`models/ledger.py`, below the governance layer, where the queries use them.
"""

from __future__ import annotations

from decimal import Decimal

from llmgov.governance.thresholds import Thresholds

NO_BUDGET = "no_budget"
EXCEEDED = "exceeded"
PROJECTED_OVERRUN = "projected_overrun"
AT_RISK = "at_risk"
OK = "ok"
BUDGET_STATUSES = (OK, AT_RISK, PROJECTED_OVERRUN, EXCEEDED, NO_BUDGET)
# the statuses the checks raise a budget finding for
ALERTED_STATUSES = frozenset({EXCEEDED, PROJECTED_OVERRUN})


def _decimal(value: Decimal | float | None) -> Decimal | None:
    if value is None:
        return None
    return value if isinstance(value, Decimal) else Decimal(repr(float(value)))


def budget_status(
    budget: Decimal | float | None,
    month_to_date: Decimal | float,
    projected: Decimal | float | None,
    projected_high: Decimal | float | None,
    limits: Thresholds,
) -> str:
    """The one budget-status rule (see the module docstring). Amounts are compared to the
    cent, so a figure printed equal to the budget reads as reaching it."""
    budget = _decimal(budget)
    if budget is None or budget <= 0:
        return NO_BUDGET
    cent = Decimal("0.01")
    spent = _decimal(month_to_date).quantize(cent)  # type: ignore[union-attr]
    if spent >= budget:
        return EXCEEDED
    point = _decimal(projected)
    if point is not None and point.quantize(cent) > budget * (
        1 + Decimal(str(limits.projection_tolerance))
    ):
        return PROJECTED_OVERRUN
    high = _decimal(projected_high)
    if spent >= budget * Decimal(str(limits.budget_warning_ratio)) or (
        high is not None and high.quantize(cent) > budget
    ):
        return AT_RISK
    return OK


__all__ = [
    "ALERTED_STATUSES",
    "AT_RISK",
    "BUDGET_STATUSES",
    "EXCEEDED",
    "NO_BUDGET",
    "OK",
    "PROJECTED_OVERRUN",
    "budget_status",
]

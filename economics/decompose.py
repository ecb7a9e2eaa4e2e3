"""Why spend changed between two periods: volume, retries, intensity and price/mix.

Spend is a product of four factors, for each workload:

    cost = good requests x (invocations / good requests) x (tokens / invocation) x (cost / token)
           volume          retries                        intensity              price and mix

where good requests = invocations - errors. The log-mean Divisia index (LMDI-I) splits the
change `cost_after - cost_before` into one additive effect per factor,

    effect_k = L(cost_after, cost_before) * ln(factor_k_after / factor_k_before),
    L(a, b) = (a - b) / (ln a - ln b),  L(a, a) = a,

and the effects add up to the change exactly (the logs of the factors sum to the log of the
cost ratio). "The bill went up but usage did not" is a large price/mix effect.

Zeros have no logarithm, so:
- no spend in either period: every effect is 0;
- spend in only one period (a new or stopped workload): the whole change is volume;
- spend in both but usage missing or zero in one (billing without metrics, or every call
  failed): the factors are unknown and the change is reported as `unexplained`;
- negative spend (credits, refunds) in a period: `unexplained` too.
No effect is ever NaN or infinite for finite inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from llmgov.economics._numeric import FloatArray

EFFECTS = ("volume", "retries", "intensity", "price_mix", "unexplained")
"""Names of the effects, in the order of `Decomposition.driver` codes."""

DECOMPOSITION_METHODS = ("no_spend", "lmdi", "new_or_stopped", "no_usage_data", "negative_spend")
"""Names of the `Decomposition.method` codes."""


@dataclass(frozen=True, eq=False)
class PeriodTotals:
    """Sums over one period, each `(W,)` float64: spend and the usage that explains it."""

    cost: FloatArray
    requests: FloatArray  # invocations
    errors: FloatArray  # failed invocations (client + server errors)
    tokens: FloatArray  # input + output tokens

    @classmethod
    def over(
        cls,
        cost: ArrayLike,
        requests: ArrayLike,
        errors: ArrayLike,
        tokens: ArrayLike,
        columns: slice,
    ) -> PeriodTotals:
        """Totals of `(W, T)` arrays over `columns`."""
        return cls(
            *(
                np.asarray(a, dtype=np.float64)[:, columns].sum(axis=1)
                for a in (cost, requests, errors, tokens)
            )
        )


@dataclass(frozen=True, eq=False)
class Decomposition:
    """Effects on spend, `(W,)` float64 money each; they sum to `change` exactly.

    - `before`, `after`: spend in each period; `change = after - before`.
    - `volume`: more or fewer successful requests.
    - `retries`: more or fewer invocations per successful request (errors and retries).
    - `intensity`: more or fewer tokens per invocation (prompt and answer length).
    - `price_mix`: cost per token (prices, model mix, input/output mix, caching).
    - `unexplained`: change that usage data cannot split (see module notes).
    - `driver`: `(W,)` int8, index into `EFFECTS` of the largest effect in absolute value.
    - `method`: `(W,)` int8, index into `DECOMPOSITION_METHODS`.
    """

    before: FloatArray
    after: FloatArray
    change: FloatArray
    volume: FloatArray
    retries: FloatArray
    intensity: FloatArray
    price_mix: FloatArray
    unexplained: FloatArray
    driver: NDArray[np.int8]
    method: NDArray[np.int8]

    def effects(self) -> FloatArray:
        """`(W, 5)` the effects stacked in `EFFECTS` order."""
        return np.stack([getattr(self, name) for name in EFFECTS], axis=1)


def log_ratio(after: ArrayLike, before: ArrayLike) -> FloatArray:
    """ln(after / before) of positive arrays, as log1p of the relative change: accurate when
    the two are close, and exactly the same when both are scaled by a power of two."""
    top, bottom = np.asarray(after, np.float64), np.asarray(before, np.float64)
    return np.log1p((top - bottom) / bottom)


def log_mean(a: ArrayLike, b: ArrayLike) -> FloatArray:
    """The logarithmic mean L(a, b) = (a - b) / ln(a / b) of positive arrays; L(a, a) = a."""
    left, right = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64))
    logs = log_ratio(left, right)
    out: FloatArray = np.divide(left - right, logs, out=left.copy(), where=logs != 0)
    return out


def decompose(before: PeriodTotals, after: PeriodTotals) -> Decomposition:
    """LMDI decomposition of the spend change from `before` to `after` for every workload."""
    cost0, cost1 = before.cost, after.cost
    n = cost0.shape[0]
    good0 = np.maximum(before.requests - before.errors, 0.0)
    good1 = np.maximum(after.requests - after.errors, 0.0)
    quantities0 = np.stack([cost0, before.requests, good0, before.tokens])
    quantities1 = np.stack([cost1, after.requests, good1, after.tokens])

    spent0, spent1 = cost0 > 0, cost1 > 0
    usable = np.all(quantities0 > 0, axis=0) & np.all(quantities1 > 0, axis=0)
    new_or_stopped = spent0 != spent1
    no_usage = spent0 & spent1 & ~usable

    change = cost1 - cost0
    effects = np.zeros((4, n))
    if usable.any():
        weight = log_mean(cost1[usable], cost0[usable])
        logs = _log_factors(log_ratio(quantities1[:, usable], quantities0[:, usable]))
        effects[:, usable] = weight * logs
        # The logs sum to ln(cost1/cost0) up to rounding: put the rounding into price/mix so
        # the effects add up to the change.
        effects[3, usable] += change[usable] - effects[:, usable].sum(axis=0)
    effects[0, new_or_stopped] = change[new_or_stopped]
    unexplained = np.where(no_usage, change, 0.0)
    # Negative spend (credits) and other shapes not covered above: keep the identity.
    other = ~(usable | new_or_stopped | no_usage)
    unexplained[other] = change[other]

    method = np.zeros(n, dtype=np.int8)
    method[usable], method[new_or_stopped], method[no_usage] = 1, 2, 3
    method[other & (change != 0)] = 4  # credits or refunds: reported as unexplained
    stacked = np.vstack([effects, unexplained[None, :]])
    driver = np.argmax(np.abs(stacked), axis=0).astype(np.int8)
    return Decomposition(
        cost0,
        cost1,
        change,
        effects[0],
        effects[1],
        effects[2],
        effects[3],
        unexplained,
        driver,
        method,
    )


def decompose_periods(
    cost: ArrayLike,
    requests: ArrayLike,
    errors: ArrayLike,
    tokens: ArrayLike,
    before: slice,
    after: slice,
) -> Decomposition:
    """Decompose between two column ranges of `(W, T)` arrays (e.g. last week vs the one
    before: `slice(-14, -7)`, `slice(-7, None)`). Unequal periods are compared as totals."""
    return decompose(
        PeriodTotals.over(cost, requests, errors, tokens, before),
        PeriodTotals.over(cost, requests, errors, tokens, after),
    )


def _log_factors(logs: FloatArray) -> FloatArray:
    """From the log changes of [cost, invocations, good requests, tokens] `(4, n)` to the log
    changes of the factors: volume (good), retries (invocations / good), intensity (tokens /
    invocation), price/mix (cost / token). They sum to the log change of cost."""
    log_cost, log_calls, log_good, log_tokens = logs
    return np.stack([log_good, log_calls - log_good, log_tokens - log_calls, log_cost - log_tokens])


__all__ = [
    "DECOMPOSITION_METHODS",
    "EFFECTS",
    "Decomposition",
    "PeriodTotals",
    "decompose",
    "decompose_periods",
    "log_mean",
    "log_ratio",
]

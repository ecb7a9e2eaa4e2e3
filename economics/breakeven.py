"""Bedrock or self-hosted: monthly cost both ways, the break-even volume and its sensitivity.

    Bedrock monthly     = input tokens x input price + output tokens x output price
    self-hosted monthly = instances x hourly price x 730 + people
    instances           = max(min_instances, ceil(peak output token rate /
                                                  (throughput per instance x target utilisation)))
    peak rate           = monthly output tokens / seconds in a month x peak-to-mean ratio
    people              = people cost per year / 12 x FTE (1.5 senior engineers without existing
                          ML infrastructure, a marginal 0.25 with it)

Throughput is output tokens per second, the metric the published benchmarks report; which
figure applies to a model on a GPU is `economics.sizing.estimate_throughput` (within the
model's size class only; see docs/economics.md). Everything broadcasts: pass scalars for one
workload or `(W,)` arrays for many.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ._numeric import BoolArray, FloatArray

HOURS_PER_MONTH = 730.0
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
FTE_WITHOUT_ML_INFRA = 1.5  # "1-2 senior engineers"
FTE_WITH_ML_INFRA = 0.25  # a marginal share of an existing platform team


def people_monthly_cost(
    people_cost_per_year: ArrayLike,
    ml_infrastructure: ArrayLike,
    *,
    fte_without_ml_infra: float = FTE_WITHOUT_ML_INFRA,
    fte_with_ml_infra: float = FTE_WITH_ML_INFRA,
) -> FloatArray:
    """People cost per month of running the platform: loaded cost per year / 12 x FTE."""
    fte = np.where(
        np.asarray(ml_infrastructure, dtype=bool), fte_with_ml_infra, fte_without_ml_infra
    )
    out: FloatArray = np.asarray(people_cost_per_year, dtype=float) * fte / 12
    return out


def bedrock_price_per_mtok(
    input_share: ArrayLike,
    price_input_per_mtok: ArrayLike,
    price_output_per_mtok: ArrayLike,
    *,
    cache_read_share: ArrayLike = 0.0,
    cache_write_share: ArrayLike = 0.0,
    price_cache_read_per_mtok: ArrayLike | None = None,
    price_cache_write_per_mtok: ArrayLike | None = None,
    tier_multiplier: ArrayLike = 1.0,
) -> FloatArray:
    """Bedrock money per million tokens of a mix: shares of all tokens that are plain input,
    cache reads, cache writes (each at its own price; input price when it has none) and
    output, times the way of buying (batch 0.5, flex 0.5, priority 1.75; standard 1). The
    one rule for a Bedrock token price."""
    share_in = np.asarray(input_share, dtype=float)
    reads = np.asarray(cache_read_share, dtype=float)
    writes = np.asarray(cache_write_share, dtype=float)
    price_in = np.asarray(price_input_per_mtok, dtype=float)
    read_price = price_in if price_cache_read_per_mtok is None else price_cache_read_per_mtok
    write_price = price_in if price_cache_write_per_mtok is None else price_cache_write_per_mtok
    plain = np.maximum(share_in - reads - writes, 0.0)
    per_mtok = (
        plain * price_in
        + reads * np.asarray(read_price, dtype=float)
        + writes * np.asarray(write_price, dtype=float)
        + (1 - share_in) * np.asarray(price_output_per_mtok, dtype=float)
    )
    out: FloatArray = per_mtok * np.asarray(tier_multiplier, dtype=float)
    return out


def bedrock_monthly_cost(
    monthly_tokens: ArrayLike,
    output_share: ArrayLike,
    price_input_per_mtok: ArrayLike,
    price_output_per_mtok: ArrayLike,
) -> FloatArray:
    """Bedrock on-demand cost of `monthly_tokens` (input + output) per month."""
    out: FloatArray = np.asarray(monthly_tokens, float) * _price_per_token(
        output_share, price_input_per_mtok, price_output_per_mtok
    )
    return out


def instances_needed(
    monthly_tokens: ArrayLike,
    output_share: ArrayLike,
    throughput_per_instance: ArrayLike,
    peak_to_mean: ArrayLike,
    target_utilisation: ArrayLike,
    min_instances: ArrayLike = 1,
) -> FloatArray:
    """Instances needed to serve the peak output token rate at the target utilisation."""
    peak_rate = (
        np.asarray(monthly_tokens, float)
        * np.asarray(output_share, float)
        / SECONDS_PER_MONTH
        * np.asarray(peak_to_mean, float)
    )
    capacity = np.asarray(throughput_per_instance, float) * np.asarray(target_utilisation, float)
    needed = np.ceil(
        np.divide(
            peak_rate,
            capacity,
            out=np.zeros(np.broadcast(peak_rate, capacity).shape),
            where=capacity > 0,
        )
        - 1e-9
    )
    out: FloatArray = np.maximum(needed, min_instances)
    return out


@dataclass(frozen=True, eq=False)
class BreakEven:
    """Monthly costs both ways at the workload's volume, the break-even and sensitivities.

    Money is per month in the currency of the prices; arrays have the broadcast shape `S`
    of the inputs (a 0-d array for scalar inputs: use `float(x)`).

    - `monthly_tokens`, `bedrock_monthly`, `self_hosted_monthly` (= infra + people),
      `self_hosted_infra_monthly`, `self_hosted_people_monthly`, `instances`,
      `savings_monthly` (bedrock - self-hosted; positive: self-hosting saves),
      `fleet_utilisation` (mean output token rate / fleet throughput, 0-1).
    - `break_even_monthly_tokens`: the smallest monthly volume (input + output tokens) at
      which self-hosting costs no more than Bedrock; NaN where it never does
      (`breaks_even` False: a fully used instance costs more per token than Bedrock).
    - `volume_factors` `(3,)` = 0.5, 1, 1.5 and `bedrock_by_volume`, `self_hosted_by_volume`
      `S + (3,)`: costs at -50%, the volume, +50%.
    - `peak_to_mean_values` `S + (3,)` (half, as given, double; never below 1),
      `self_hosted_by_peak`, `break_even_by_peak` `S + (3,)`.
    """

    monthly_tokens: FloatArray
    bedrock_monthly: FloatArray
    self_hosted_monthly: FloatArray
    self_hosted_infra_monthly: FloatArray
    self_hosted_people_monthly: FloatArray
    instances: FloatArray
    savings_monthly: FloatArray
    fleet_utilisation: FloatArray
    break_even_monthly_tokens: FloatArray
    breaks_even: BoolArray
    volume_factors: FloatArray
    bedrock_by_volume: FloatArray
    self_hosted_by_volume: FloatArray
    peak_to_mean_values: FloatArray
    self_hosted_by_peak: FloatArray
    break_even_by_peak: FloatArray


def break_even(
    monthly_tokens: ArrayLike,
    output_share: ArrayLike,
    price_input_per_mtok: ArrayLike,
    price_output_per_mtok: ArrayLike,
    throughput_per_instance: ArrayLike,
    instance_hourly_price: ArrayLike,
    *,
    peak_to_mean: ArrayLike = 3.0,
    target_utilisation: ArrayLike = 0.6,
    people_cost_per_year: ArrayLike = 180000.0,
    ml_infrastructure: ArrayLike = False,
    people_monthly: ArrayLike | None = None,
    min_instances: int = 1,
) -> BreakEven:
    """Compare Bedrock and self-hosting for a monthly volume.

    - `monthly_tokens`: input + output tokens per month; `output_share`: output / total.
    - `price_input_per_mtok`, `price_output_per_mtok`: Bedrock prices per million tokens.
    - `throughput_per_instance`: output tokens per second one instance serves at saturation
      (see `sizing.estimate_throughput`); `instance_hourly_price`: on-demand price per hour.
    - `peak_to_mean`: peak over mean token rate of the traffic (see `traffic_shape`).
    - `target_utilisation`: the share of throughput to plan for at peak (0-1).
    - `people_cost_per_year`, `ml_infrastructure`: the organisation profile; or give
      `people_monthly` directly.
    - `min_instances`: the smallest fleet (1; 2 for a redundant critical-path service).
    """
    people_given: ArrayLike = (
        people_monthly_cost(people_cost_per_year, ml_infrastructure)
        if people_monthly is None
        else people_monthly
    )
    # Every input to one shape S, so the sensitivity grids can add a last axis to all.
    volume, share, throughput, hourly, peak, utilisation, people, price_in, price_out = (
        np.array(a, dtype=float)
        for a in np.broadcast_arrays(
            monthly_tokens,
            output_share,
            throughput_per_instance,
            instance_hourly_price,
            peak_to_mean,
            target_utilisation,
            people_given,
            price_input_per_mtok,
            price_output_per_mtok,
        )
    )
    price = _price_per_token(share, price_in, price_out)

    def grid(value: FloatArray) -> FloatArray:  # S -> S + (1,)
        return value[..., None]

    def infra_cost(
        tokens: FloatArray,
        peak_ratio: FloatArray,
        expand: Callable[[FloatArray], FloatArray] = lambda v: v,
    ) -> tuple[FloatArray, FloatArray]:
        fleet = instances_needed(
            tokens,
            expand(share),
            expand(throughput),
            peak_ratio,
            expand(utilisation),
            min_instances,
        )
        return fleet, fleet * expand(hourly) * HOURS_PER_MONTH

    instances, infra = infra_cost(volume, peak)
    bedrock = volume * price
    self_hosted = infra + people
    fleet_capacity = instances * throughput
    fleet_utilisation = np.divide(
        volume * share / SECONDS_PER_MONTH,
        fleet_capacity,
        out=np.zeros(volume.shape),
        where=fleet_capacity > 0,
    )
    volume_at_break_even, breaks = _break_even_volume(
        price, share, throughput, hourly, peak, utilisation, people, min_instances
    )

    factors = np.array([0.5, 1.0, 1.5])
    by_volume = grid(volume) * factors
    peaks = np.maximum(grid(peak) * np.array([0.5, 1.0, 2.0]), 1.0)
    return BreakEven(
        monthly_tokens=volume,
        bedrock_monthly=bedrock,
        self_hosted_monthly=self_hosted,
        self_hosted_infra_monthly=infra,
        self_hosted_people_monthly=people,
        instances=instances,
        savings_monthly=bedrock - self_hosted,
        fleet_utilisation=fleet_utilisation,
        break_even_monthly_tokens=volume_at_break_even,
        breaks_even=breaks,
        volume_factors=factors,
        bedrock_by_volume=by_volume * grid(price),
        self_hosted_by_volume=infra_cost(by_volume, grid(peak), grid)[1] + grid(people),
        peak_to_mean_values=peaks,
        self_hosted_by_peak=infra_cost(grid(volume), peaks, grid)[1] + grid(people),
        break_even_by_peak=_break_even_volume(
            grid(price),
            grid(share),
            grid(throughput),
            grid(hourly),
            peaks,
            grid(utilisation),
            grid(people),
            min_instances,
        )[0],
    )


def _price_per_token(
    output_share: ArrayLike, price_input_per_mtok: ArrayLike, price_output_per_mtok: ArrayLike
) -> FloatArray:
    share = np.asarray(output_share, dtype=float)
    out: FloatArray = (
        (1 - share) * np.asarray(price_input_per_mtok, float)
        + share * np.asarray(price_output_per_mtok, float)
    ) / 1e6
    return out


def _break_even_volume(
    price: FloatArray,
    share: FloatArray,
    throughput: FloatArray,
    hourly: FloatArray,
    peak: FloatArray,
    utilisation: FloatArray,
    people: FloatArray,
    min_instances: int,
) -> tuple[FloatArray, BoolArray]:
    """The first monthly volume where Bedrock's cost reaches the self-hosted cost.

    With `k` instances needed per monthly token, an instance full at the target carries
    `1/k` tokens a month. Self-hosting can only catch up when that many tokens cost more on
    Bedrock than the instance does (`price / k > monthly instance cost`); the first fleet size
    where it does is `n* = max(min, ceil(people / (price / k - instance)))`, and the crossing
    is where Bedrock's cost reaches that fleet's cost: `(n* x instance + people) / price`.
    """
    monthly_instance = hourly * HOURS_PER_MONTH
    capacity = throughput * utilisation * SECONDS_PER_MONTH  # output tokens a month
    per_instance_tokens = np.divide(
        capacity,
        share * peak,
        out=np.full(np.broadcast(capacity, share, peak).shape, np.inf),
        where=(share * peak) > 0,
    )  # 1/k: total tokens an instance carries
    with np.errstate(invalid="ignore"):  # 0 x inf: no price, never breaks even
        margin = price * per_instance_tokens - monthly_instance  # per full instance
    breaks = (margin > 0) & (price > 0)
    safe_margin = np.where(breaks, margin, 1.0)
    fleet = np.maximum(np.ceil(np.maximum(people, 0) / safe_margin - 1e-9), min_instances)
    volume = np.divide(
        fleet * monthly_instance + people,
        price,
        out=np.zeros(np.broadcast(fleet, price).shape),
        where=price > 0,
    )
    return np.where(breaks, volume, np.nan), breaks


__all__ = [
    "FTE_WITHOUT_ML_INFRA",
    "FTE_WITH_ML_INFRA",
    "HOURS_PER_MONTH",
    "BreakEven",
    "bedrock_monthly_cost",
    "bedrock_price_per_mtok",
    "break_even",
    "instances_needed",
    "people_monthly_cost",
]

"""Unit economics per workload: what a token, a request and an upstream request cost, and what
a self-hosted fleet costs per million tokens it actually served.

Self-hosted cost per million tokens is computed on the reservation: every hour the GPUs were
provisioned is paid for, busy or idle, and divided by the tokens actually served. Dividing
only the busy time would flatter self-hosting (an idle fleet would look free).

Undefined ratios (nothing to divide by) are 0, with a `has_*` mask saying where the figure
means something, so no NaN reaches a message.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from llmgov.economics._numeric import BoolArray, FloatArray
from llmgov.economics._numeric import ratio as _ratio
from llmgov.economics.series import DailyArrays, GpuArrays

HOURS_PER_MONTH = 730.0


@dataclass(frozen=True, eq=False)
class UnitCosts:
    """Unit costs over a window, each `(W,)` float64 (money in the input's currency).

    - `cost`, `input_tokens`, `output_tokens`, `requests`, `upstream_requests`: window sums.
    - `cost_per_1k_tokens`: blended, input and output together.
    - `cost_per_1k_input_tokens`, `cost_per_1k_output_tokens`: the cost split between input
      and output by `output_price_ratio` (output price / input price; 1 = blended).
    - `cost_per_request`, `cost_per_upstream_request`, `calls_per_upstream_request`,
      `tokens_per_request`, `error_share` (errors / invocations).
    - `self_hosted_cost`: reservation cost of the GPU fleet in the window;
      `tokens_served`; `self_hosted_cost_per_mtok` (reservation cost / tokens served x 1e6);
      `gpu_utilisation_pct` (mean over provisioned hours).
    - `has_tokens`, `has_requests`, `has_upstream`, `has_gpu`: `(W,)` bool, where the
      corresponding ratios are defined.
    """

    cost: FloatArray
    input_tokens: FloatArray
    output_tokens: FloatArray
    requests: FloatArray
    upstream_requests: FloatArray
    cost_per_1k_tokens: FloatArray
    cost_per_1k_input_tokens: FloatArray
    cost_per_1k_output_tokens: FloatArray
    cost_per_request: FloatArray
    cost_per_upstream_request: FloatArray
    calls_per_upstream_request: FloatArray
    tokens_per_request: FloatArray
    error_share: FloatArray
    self_hosted_cost: FloatArray
    tokens_served: FloatArray
    self_hosted_cost_per_mtok: FloatArray
    gpu_utilisation_pct: FloatArray
    has_tokens: BoolArray
    has_requests: BoolArray
    has_upstream: BoolArray
    has_gpu: BoolArray


def unit_costs(
    daily: DailyArrays,
    gpu: GpuArrays | None = None,
    *,
    window_days: int = 30,
    gpu_window_hours: int = 168,
    output_price_ratio: float | FloatArray = 1.0,
) -> UnitCosts:
    """Unit costs over the last `window_days` of `daily` and, for self-hosted fleets, the
    last `gpu_window_hours` of `gpu` (default a week: a whole weekly cycle of traffic).

    `output_price_ratio` (scalar or `(W,)`): output token price over input token price for
    the workload's models (e.g. 5 for many Claude models, 1 for Llama on Bedrock); the cost
    is split so that an output token costs that many input tokens.
    """
    n, n_days = daily.cost.shape
    columns = slice(max(n_days - window_days, 0), n_days)
    cost = daily.cost[:, columns].sum(axis=1)
    input_tokens = daily.input_tokens[:, columns].sum(axis=1)
    output_tokens = daily.output_tokens[:, columns].sum(axis=1)
    requests = daily.requests[:, columns].sum(axis=1)
    errors = daily.errors[:, columns].sum(axis=1)
    upstream = daily.upstream_requests[:, columns].sum(axis=1)
    tokens = input_tokens + output_tokens

    ratio = np.broadcast_to(np.asarray(output_price_ratio, dtype=float), (n,))
    input_weight = input_tokens + ratio * output_tokens  # tokens in input-token equivalents
    per_input_token = _ratio(cost, input_weight)

    self_hosted, served, utilisation = np.zeros(n), np.zeros(n), np.zeros(n)
    if gpu is not None and gpu.fleet_rows.size:
        fleets = gpu.fleet_rows
        hours = gpu.instance_hours.shape[1]
        window = min(gpu_window_hours, hours, 24 * window_days)
        columns = slice(hours - window, hours)
        self_hosted[fleets] = gpu.cost[fleets, columns].sum(axis=1)
        served[fleets] = gpu.tokens_served[fleets, columns].sum(axis=1)
        weights = np.where(gpu.measured[fleets, columns], gpu.gpu_hours[fleets, columns], 0.0)
        utilisation[fleets] = _ratio(
            np.einsum("ij,ij->i", gpu.utilisation_pct[fleets, columns], weights),
            weights.sum(axis=1),
        )
    has_gpu = (self_hosted > 0) & (served > 0)

    return UnitCosts(
        cost=cost,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        requests=requests,
        upstream_requests=upstream,
        cost_per_1k_tokens=1000 * _ratio(cost, tokens),
        cost_per_1k_input_tokens=1000 * np.where(input_tokens > 0, per_input_token, 0.0),
        cost_per_1k_output_tokens=1000 * np.where(output_tokens > 0, ratio * per_input_token, 0.0),
        cost_per_request=_ratio(cost, requests),
        cost_per_upstream_request=_ratio(cost, upstream),
        calls_per_upstream_request=_ratio(requests, upstream),
        tokens_per_request=_ratio(tokens, requests),
        error_share=_ratio(errors, requests),
        self_hosted_cost=self_hosted,
        tokens_served=served,
        self_hosted_cost_per_mtok=1e6 * _ratio(self_hosted, served),
        gpu_utilisation_pct=utilisation,
        has_tokens=tokens > 0,
        has_requests=requests > 0,
        has_upstream=upstream > 0,
        has_gpu=has_gpu,
    )


def self_hosted_cost_per_mtok(
    instance_hours: ArrayLike, hourly_price: ArrayLike, tokens_served: ArrayLike
) -> FloatArray:
    """Reservation-based cost per million tokens: provisioned instance-hours x hourly price /
    tokens actually served x 1e6 (0 when nothing was served). Broadcasts over arrays."""
    return 1e6 * _ratio(
        np.asarray(instance_hours, float) * np.asarray(hourly_price, float), tokens_served
    )


@dataclass(frozen=True, eq=False)
class TrafficShape:
    """How a workload's token traffic is shaped, each `(W,)` float64.

    - `mean_tokens_per_second`, `peak_tokens_per_second` (the `peak_quantile` of hourly
      rates), `peak_to_mean` (>= 1 where there is traffic, else 1), `daily_cv` (standard
      deviation / mean of daily tokens: day-to-day variation), `monthly_tokens` (mean daily
      tokens x 730 / 24).
    """

    mean_tokens_per_second: FloatArray
    peak_tokens_per_second: FloatArray
    peak_to_mean: FloatArray
    daily_cv: FloatArray
    monthly_tokens: FloatArray


def traffic_shape(
    hourly_tokens: ArrayLike,
    daily_tokens: ArrayLike,
    *,
    peak_quantile: float = 0.99,
    window_days: int = 30,
) -> TrafficShape:
    """Traffic shape from `(W, H)` hourly and `(W, D)` daily token counts (the last
    `window_days` of the daily ones), for the break-even and `/llm-decide`."""
    hourly = np.asarray(hourly_tokens, dtype=float)
    daily = np.asarray(daily_tokens, dtype=float)[:, -window_days:]
    n = hourly.shape[0]
    if hourly.shape[1]:
        mean_rate = hourly.mean(axis=1) / 3600
        peak_rate = np.quantile(hourly, peak_quantile, axis=1) / 3600
    else:
        mean_rate = peak_rate = np.zeros(n)
    peak_to_mean = np.where(mean_rate > 0, np.maximum(_ratio(peak_rate, mean_rate), 1.0), 1.0)
    if daily.shape[1]:
        daily_mean = daily.mean(axis=1)
        daily_cv = _ratio(daily.std(axis=1), daily_mean)
    else:
        daily_mean = daily_cv = np.zeros(n)
    return TrafficShape(
        mean_rate, peak_rate, peak_to_mean, daily_cv, daily_mean * HOURS_PER_MONTH / 24
    )


__all__ = ["TrafficShape", "UnitCosts", "self_hosted_cost_per_mtok", "traffic_shape", "unit_costs"]

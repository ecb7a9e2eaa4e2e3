"""Bedrock usage from CloudWatch `AWS/Bedrock`: the near-real-time signal, per model id.

`ModelId` values are discovered per account and region with `list_metrics`, never
hard-coded; only the metrics a model actually has are queried (cache-token metrics exist
only where prompt caching is used). Hourly sums (latency: average and p95) over a lookback
window; each hour gets a token-based `estimated_cost` from the price book.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime
from typing import Any

from llmgov.collectors.cloudwatch import MetricQuery, collect_hourly, dimensions_of, list_metrics
from llmgov.collectors.prices import PriceBook
from llmgov.collectors.upserts import series_key

SOURCE = "bedrock_cloudwatch"
NAMESPACE = "AWS/Bedrock"
# CloudWatch metric -> UsageFact column; all read with Stat=Sum
SUM_METRICS = {
    "Invocations": "invocations",
    "InputTokenCount": "input_tokens",
    "OutputTokenCount": "output_tokens",
    "CacheReadInputTokenCount": "cache_read_tokens",
    "CacheWriteInputTokenCount": "cache_write_tokens",
    "InvocationClientErrors": "client_errors",
    "InvocationServerErrors": "server_errors",
    "InvocationThrottles": "throttles",
}
LATENCY_METRIC = "InvocationLatency"
COUNT_FIELDS = tuple(SUM_METRICS.values())
# an application inference profile's id (what CloudWatch reports as ModelId for it)
PROFILE_ID = re.compile(r"^[a-z0-9]{12}$")


def discover_models(cloudwatch: Any) -> dict[str, set[str]]:
    """{ModelId: metric names it has} for metrics whose only dimension is ModelId."""
    models: dict[str, set[str]] = defaultdict(set)
    for metric in list_metrics(cloudwatch, NAMESPACE):
        dims = dimensions_of(metric)
        if set(dims) == {"ModelId"}:
            models[dims["ModelId"]].add(metric["MetricName"])
    return dict(models)


def build_queries(models: dict[str, set[str]], latency_p95: bool) -> list[MetricQuery]:
    queries: list[MetricQuery] = []
    for model_id in sorted(models):
        dims = (("ModelId", model_id),)
        for metric in sorted(models[model_id]):
            if metric in SUM_METRICS:
                queries.append(
                    MetricQuery(NAMESPACE, metric, dims, "Sum", (model_id, SUM_METRICS[metric]))
                )
            elif metric == LATENCY_METRIC:
                queries.append(
                    MetricQuery(NAMESPACE, metric, dims, "Average", (model_id, "latency_ms_avg"))
                )
                if latency_p95:
                    queries.append(
                        MetricQuery(NAMESPACE, metric, dims, "p95", (model_id, "latency_ms_p95"))
                    )
    return queries


def model_dimensions(account: str, region: str, model_id: str) -> dict[str, Any]:
    dims: dict[str, Any] = {"account": account, "region": region, "model_id": model_id}
    if ":application-inference-profile/" in model_id or PROFILE_ID.match(model_id):
        dims["inference_profile"] = model_id
    return dims


def collect(
    cloudwatch: Any,
    *,
    account: str,
    region: str,
    start: datetime,
    end: datetime,
    prices: PriceBook,
    now: datetime,
    latency_p95: bool = True,
) -> list[dict[str, Any]]:
    """UsageFact rows (column dicts) for every model and hour with data in [start, end)."""
    models = discover_models(cloudwatch)
    series = collect_hourly(cloudwatch, build_queries(models, latency_p95), start, end)
    hours: dict[tuple[str, datetime], dict[str, float]] = defaultdict(dict)
    for (model_id, field), values in series.items():
        for hour, value in values.items():
            hours[(model_id, hour)][field] = value
    rows = []
    for (model_id, hour), values in sorted(hours.items()):
        counts = {name: values.get(name, 0.0) for name in COUNT_FIELDS}
        rows.append(
            {
                "source": SOURCE,
                "series_key": series_key("bedrock", account, region, model_id),
                "hour": hour,
                "account": account,
                "region": region,
                "model_id": model_id,
                **counts,
                "latency_ms_avg": values.get("latency_ms_avg"),
                "latency_ms_p95": values.get("latency_ms_p95"),
                "estimated_cost": prices.estimate(
                    model_id,
                    counts["input_tokens"],
                    counts["output_tokens"],
                    counts["cache_read_tokens"],
                    counts["cache_write_tokens"],
                ),
                "dimensions": model_dimensions(account, region, model_id),
                "collected_at": now,
            }
        )
    return rows

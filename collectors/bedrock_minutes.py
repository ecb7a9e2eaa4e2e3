"""Bedrock usage per minute from CloudWatch `AWS/Bedrock`: the early-warning signal.

The same metrics as the hourly collector (`bedrock_cloudwatch`), per `ModelId` (an
application inference profile reports its id as the ModelId), read at a 1-minute period
over the last `lookback_minutes`. Nothing is stored as facts: the minutes feed the minute
detectors of the run and are then dropped (the hourly collector keeps the record).

Requests per run and scope: `list_metrics` (one page per 500 metrics) and
`GetMetricData` = ⌈queries / 500⌉ (a window of 20 minutes is 20 datapoints a query, far
under a page), so the count is constant in the number of workloads; GetMetricData costs
$0.01 per 1,000 metrics requested (`collectors.aws.ApiCounter` prices it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from llmgov.collectors.bedrock_cloudwatch import NAMESPACE, SUM_METRICS, discover_models
from llmgov.collectors.cloudwatch import MetricQuery, get_metric_data
from llmgov.collectors.prices import PriceBook
from llmgov.collectors.upserts import series_key

MINUTE = timedelta(minutes=1)
DEFAULT_LOOKBACK_MINUTES = 20
# UsageFact-style field names, one (models, minutes) array each
FIELDS = tuple(dict.fromkeys(SUM_METRICS.values()))


def floor_minute(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.replace(second=0, microsecond=0)


@dataclass(frozen=True)
class MinuteSeries:
    """Per-minute sums for each model of one scope: `values[field]` is `(models, minutes)`."""

    series_keys: list[str]  # one per model, as the hourly collector keys its facts
    model_ids: list[str]
    minutes: np.ndarray  # (T,) datetime64[m], ascending, every minute of the window
    values: dict[str, np.ndarray]
    cost: np.ndarray  # (models, minutes) token-based estimated cost
    last_minute_with_data: datetime | None


def build_minute_queries(models: dict[str, set[str]]) -> list[MetricQuery]:
    queries: list[MetricQuery] = []
    for model_id in sorted(models):
        dims = (("ModelId", model_id),)
        for metric in sorted(models[model_id]):
            if metric in SUM_METRICS:
                queries.append(
                    MetricQuery(
                        NAMESPACE, metric, dims, "Sum", (model_id, SUM_METRICS[metric]), period=60
                    )
                )
    return queries


def minute_window(now: datetime, lookback_minutes: int) -> tuple[datetime, datetime]:
    """[start, end): the last `lookback_minutes` whole minutes before `now`'s minute."""
    end = floor_minute(now)
    return end - MINUTE * lookback_minutes, end


def collect_minutes(
    cloudwatch: Any,
    *,
    account: str,
    region: str,
    now: datetime,
    prices: PriceBook,
    lookback_minutes: int = DEFAULT_LOOKBACK_MINUTES,
    models: dict[str, set[str]] | None = None,
) -> MinuteSeries:
    """Every model's per-minute sums over the window before `now` (the current, partial
    minute is left out). Pass `models` to skip discovery (a cached `discover_models`)."""
    models = discover_models(cloudwatch) if models is None else models
    start, end = minute_window(now, lookback_minutes)
    model_ids = sorted(models)
    row = {model_id: index for index, model_id in enumerate(model_ids)}
    axis = np.arange(
        np.datetime64(start.replace(tzinfo=None), "m"),
        np.datetime64(end.replace(tzinfo=None), "m"),
    )
    values = {name: np.zeros((len(model_ids), axis.size)) for name in FIELDS}
    last: datetime | None = None
    for query, stamp, value in get_metric_data(
        cloudwatch, build_minute_queries(models), start, end, bucket=floor_minute
    ):
        model_id, name = query.tag
        column = int((np.datetime64(stamp.replace(tzinfo=None), "m") - axis[0]).astype(int))
        if 0 <= column < axis.size:
            values[name][row[model_id], column] += value
            if value and (last is None or stamp > last):
                last = stamp
    cost = np.zeros((len(model_ids), axis.size))
    for model_id, index in row.items():
        # The price book's estimate is linear in each count: price a million of each.
        for name in _PRICED:
            per_million = prices.estimate(model_id, *(1e6 if k == name else 0.0 for k in _PRICED))
            if per_million:
                cost[index] += float(per_million) / 1e6 * values[name][index]
    return MinuteSeries(
        series_keys=[series_key("bedrock", account, region, m) for m in model_ids],
        model_ids=model_ids,
        minutes=axis,
        values=values,
        cost=cost,
        last_minute_with_data=last,
    )


# the counts PriceBook.estimate takes, in its order
_PRICED = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")

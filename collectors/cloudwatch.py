"""CloudWatch plumbing shared by the Bedrock, GPU and upstream collectors: metric discovery
with `list_metrics` (paginated) and `GetMetricData` in chunks of at most 500 queries with
`NextToken` paging, so requests grow with queries / 500, never with workloads one by one."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from llmgov.collectors.paging import checked_pages, follow_pages

MAX_QUERIES_PER_CALL = 500  # the GetMetricData limit
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class MetricQuery:
    """One metric series and statistic to read, with what it means to the caller."""

    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str
    tag: Any  # the caller's label for this query's results (e.g. (model_id, field))
    period: int = 3600

    def as_request(self, query_id: str) -> dict[str, Any]:
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": self.namespace,
                    "MetricName": self.metric,
                    "Dimensions": [
                        {"Name": name, "Value": value} for name, value in self.dimensions
                    ],
                },
                "Period": self.period,
                "Stat": self.stat,
            },
            "ReturnData": True,
        }


def floor_hour(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


def hour_window(
    now: datetime, lookback_hours: int, since: datetime | None = None
) -> tuple[datetime, datetime]:
    """[start, end) aligned to hours; the current, partial hour is included (re-read next run)."""
    end = floor_hour(now) + HOUR
    start = floor_hour(since) if since else end - HOUR * (lookback_hours + 1)
    return start, end


def list_metrics(
    cloudwatch: Any, namespace: str, metric: str | None = None
) -> list[dict[str, Any]]:
    """Every metric (name + dimensions) in a namespace, following NextToken."""
    arguments: dict[str, Any] = {"Namespace": namespace}
    if metric:
        arguments["MetricName"] = metric
    found: list[dict[str, Any]] = []
    pages = cloudwatch.get_paginator("list_metrics").paginate(**arguments)
    for page in checked_pages(pages, token="NextToken", api=_api(cloudwatch, "ListMetrics")):
        found.extend(page.get("Metrics", []))
    return found


def dimensions_of(metric: dict[str, Any]) -> dict[str, str]:
    return {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}


def get_metric_data(
    cloudwatch: Any,
    queries: Iterable[MetricQuery],
    start: datetime,
    end: datetime,
    bucket: Callable[[datetime], datetime] = floor_hour,
) -> Iterator[tuple[MetricQuery, datetime, float]]:
    """(query, UTC timestamp, value) for every datapoint, ≤500 queries per request;
    timestamps are floored by `bucket` (hours unless a minute-level caller says otherwise)."""
    batch: list[MetricQuery] = []
    for query in queries:
        batch.append(query)
        if len(batch) == MAX_QUERIES_PER_CALL:
            yield from _fetch(cloudwatch, batch, start, end, bucket)
            batch = []
    if batch:
        yield from _fetch(cloudwatch, batch, start, end, bucket)


def _fetch(
    cloudwatch: Any,
    batch: list[MetricQuery],
    start: datetime,
    end: datetime,
    bucket: Callable[[datetime], datetime],
) -> Iterator[tuple[MetricQuery, datetime, float]]:
    by_id = {f"q{index}": query for index, query in enumerate(batch)}
    arguments: dict[str, Any] = {
        "MetricDataQueries": [query.as_request(query_id) for query_id, query in by_id.items()],
        "StartTime": start,
        "EndTime": end,
        "ScanBy": "TimestampAscending",
    }
    api = _api(cloudwatch, "GetMetricData")
    for response in follow_pages(cloudwatch.get_metric_data, arguments, token="NextToken", api=api):
        for result in response.get("MetricDataResults", []):
            query = by_id[result["Id"]]
            for stamp, value in zip(
                result.get("Timestamps", []), result.get("Values", []), strict=False
            ):
                if value is None:
                    continue
                yield query, bucket(stamp), float(value)


def _api(cloudwatch: Any, operation: str) -> str:
    """`CloudWatch GetMetricData in us-east-1`: what a paging error names."""
    region = getattr(getattr(cloudwatch, "meta", None), "region_name", None)
    return f"CloudWatch {operation}" + (f" in {region}" if region else "")


def collect_hourly(
    cloudwatch: Any, queries: Iterable[MetricQuery], start: datetime, end: datetime
) -> dict[Any, dict[datetime, float]]:
    """{query.tag: {hour: value}}; a value split across pages is summed for Sum statistics."""
    out: dict[Any, dict[datetime, float]] = defaultdict(dict)
    for query, hour, value in get_metric_data(cloudwatch, queries, start, end):
        series = out[query.tag]
        if query.stat == "Sum" and hour in series:
            series[hour] += value
        else:
            series[hour] = value
    return out

"""Upstream requests per workload (the requests that trigger LLM calls), for fan-out.

A workload's `upstream_requests.cloudwatch` names one metric (namespace, metric,
dimensions, optional stat/account/region). All workloads of one account and region are
read together, at most 500 per GetMetricData call.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from llmgov.collectors.cloudwatch import MetricQuery, collect_hourly
from llmgov.collectors.upserts import dialect_insert
from llmgov.models.facts import UpstreamFact
from llmgov.models.registry import Workload

SOURCE = "cloudwatch"


def upstream_specs(session: Session) -> list[tuple[int, dict[str, Any]]]:
    """(workload id, cloudwatch spec) for every workload that names an upstream metric."""
    specs = []
    for workload_id, config in session.execute(
        select(Workload.id, Workload.upstream_requests).where(
            Workload.upstream_requests.is_not(None)
        )
    ):
        spec = (config or {}).get("cloudwatch")
        if isinstance(spec, dict) and spec.get("namespace") and spec.get("metric"):
            specs.append((workload_id, spec))
    return specs


def specs_for_scope(
    specs: list[tuple[int, dict[str, Any]]], account: str, region: str, first_scope: bool
) -> list[tuple[int, dict[str, Any]]]:
    """The specs this account/region must read; unscoped specs go to the first scope only."""
    chosen = []
    for workload_id, spec in specs:
        wanted_account, wanted_region = spec.get("account"), spec.get("region")
        if wanted_account is None and wanted_region is None:
            if first_scope:
                chosen.append((workload_id, spec))
        elif str(wanted_account or account) == account and (wanted_region or region) == region:
            chosen.append((workload_id, spec))
    return chosen


def collect(
    cloudwatch: Any,
    specs: list[tuple[int, dict[str, Any]]],
    *,
    start: datetime,
    end: datetime,
    now: datetime,
) -> list[dict[str, Any]]:
    queries = [
        MetricQuery(
            str(spec["namespace"]),
            str(spec["metric"]),
            tuple((str(k), str(v)) for k, v in (spec.get("dimensions") or {}).items()),
            str(spec.get("stat", "Sum")),
            workload_id,
        )
        for workload_id, spec in specs
    ]
    rows = []
    for workload_id, values in collect_hourly(cloudwatch, queries, start, end).items():
        for hour, value in sorted(values.items()):
            rows.append(
                {
                    "workload_id": workload_id,
                    "hour": hour,
                    "requests": value,
                    "source": SOURCE,
                    "collected_at": now,
                }
            )
    return rows


def write(session: Session, rows: list[dict[str, Any]]) -> int:
    table = UpstreamFact.__table__
    for start in range(0, len(rows), 500):
        statement = dialect_insert(session, table).values(rows[start : start + 500])
        statement = statement.on_conflict_do_update(
            index_elements=["workload_id", "hour", "source"],
            set_={
                "requests": statement.excluded.requests,
                "collected_at": statement.excluded.collected_at,
            },
        )
        session.execute(statement)
    return len(rows)

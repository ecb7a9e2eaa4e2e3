"""Billing data that outgrows one machine: the same normalisation over a CUR 2.0 or FOCUS
table queried through Amazon Athena (`llmgov import-billing --via athena`).

Athena does the heavy part (scanning line items and summing them per day and series); the
result rows use the export's column names, so they go through the file importer's layout,
row parser, staging and merge unchanged: one normalisation, two transports.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from llmgov.collectors.attribution import attribute_facts
from llmgov.collectors.billing_files import (
    BillingStage,
    ImportReport,
    RowErrors,
    Source,
    fill_report,
    make_layout,
    read_into,
)
from llmgov.collectors.paging import checked_pages
from llmgov.models.base import transaction, utcnow
from llmgov.models.errors import BadInput, SourceError
from llmgov.models.ledger import check_currency
from llmgov.models.planner_stats import refresh_after_writing

SOURCE = "athena"
BILLING_PERIOD = "billing_period"  # the partition column of CUR 2.0 and FOCUS data exports
PRICE_PER_TB = 5.0  # USD per TB scanned (Athena SQL queries, most regions)
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}

# Group keys first, sums last; the aliases are the export's own column names.
CUR2_SQL = """SELECT
  CAST(date(line_item_usage_start_date) AS varchar) AS line_item_usage_start_date,
  line_item_usage_account_id,
  product_region_code,
  element_at(product, 'product_name') AS product_product_name,
  product_servicecode,
  line_item_product_code,
  line_item_usage_type,
  line_item_resource_id,
  line_item_line_item_type,
  CAST(date(bill_billing_period_start_date) AS varchar) AS bill_billing_period_start_date,
  line_item_legal_entity,
  {principal}
  line_item_currency_code,
  json_format(CAST(resource_tags AS JSON)) AS resource_tags,
  CAST(SUM(line_item_unblended_cost) AS varchar) AS line_item_unblended_cost,
  CAST(SUM(line_item_usage_amount) AS varchar) AS line_item_usage_amount
FROM "{database}"."{table}"
WHERE line_item_usage_start_date >= TIMESTAMP '{start} 00:00:00'
  AND line_item_usage_start_date < TIMESTAMP '{end} 00:00:00'{partition}
GROUP BY {group_by}"""

FOCUS_SQL = """SELECT
  CAST(date(chargeperiodstart) AS varchar) AS chargeperiodstart,
  subaccountid,
  regionid,
  servicename,
  publishername,
  x_servicecode,
  x_usagetype,
  resourceid,
  chargecategory,
  chargeclass,
  CAST(date(billingperiodstart) AS varchar) AS billingperiodstart,
  billingcurrency,
  json_format(CAST(tags AS JSON)) AS tags,
  CAST(SUM(billedcost) AS varchar) AS billedcost,
  CAST(SUM(consumedquantity) AS varchar) AS consumedquantity
FROM "{database}"."{table}"
WHERE chargeperiodstart >= TIMESTAMP '{start} 00:00:00'
  AND chargeperiodstart < TIMESTAMP '{end} 00:00:00'{partition}
GROUP BY {group_by}"""


def _partition_filter(column: str | None, start: date, end: date) -> str:
    """Prune by the export's `billing_period` partition ('YYYY-MM'): only the months of
    [start, end) are scanned (and paid for). A usage day may be billed a month later, so the
    month after the window is read too."""
    if not column:
        return ""
    last = end - timedelta(days=1)
    after = (last.replace(day=28) + timedelta(days=4)).replace(day=1)
    return f"\n  AND {column} BETWEEN '{start:%Y-%m}' AND '{after:%Y-%m}'"


def build_query(
    fmt: str,
    database: str,
    table: str,
    start: date,
    end: date,
    *,
    iam_principal: bool = False,
    partition: str | None = BILLING_PERIOD,
) -> str:
    """The aggregation query; identifiers are checked, dates are dates: nothing is injected.
    `partition`: the table's billing-period partition column (None: not partitioned)."""
    for name, value in (("database", database), ("table", table), ("partition", partition or "x")):
        if not IDENTIFIER.match(value):
            raise BadInput(
                f"Athena {name} {value!r} must be a plain identifier (letters, digits, _)"
            )
    if start >= end:
        raise BadInput(f"the Athena window is empty: --since {start} is not before --until {end}")
    if fmt == "cur2":
        principal = "line_item_iam_principal,\n  " if iam_principal else ""
        keys = 14 if iam_principal else 13
        return CUR2_SQL.format(
            partition=_partition_filter(partition, start, end),
            principal=principal,
            database=database,
            table=table,
            start=start.isoformat(),
            end=end.isoformat(),
            group_by=", ".join(str(i) for i in range(1, keys + 1)),
        )
    if fmt == "focus":
        return FOCUS_SQL.format(
            partition=_partition_filter(partition, start, end),
            database=database,
            table=table,
            start=start.isoformat(),
            end=end.isoformat(),
            group_by=", ".join(str(i) for i in range(1, 14)),
        )
    raise BadInput(f"unknown billing format {fmt!r}; use focus or cur2")


def run_query(
    athena: Any,
    query: str,
    *,
    database: str,
    output: str,
    workgroup: str | None = None,
    timeout: float = 600.0,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Start the query and wait for it; the execution id, or SourceError with Athena's reason."""
    if not output.startswith("s3://"):
        raise BadInput(
            f"--output {output!r} must be an S3 location like s3://bucket/athena-results/"
        )
    arguments: dict[str, Any] = {
        "QueryString": query,
        "QueryExecutionContext": {"Database": database},
        "ResultConfiguration": {"OutputLocation": output},
    }
    if workgroup:
        arguments["WorkGroup"] = workgroup
    execution_id = athena.start_query_execution(**arguments)["QueryExecutionId"]
    waited, delay = 0.0, 0.5
    while True:
        status = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"][
            "Status"
        ]
        state = status.get("State")
        if state == "SUCCEEDED":
            return execution_id
        if state in TERMINAL:
            reason = status.get("StateChangeReason") or "no reason given"
            raise SourceError(f"Athena query {execution_id} {state.lower()}: {reason}")
        if waited >= timeout:
            raise SourceError(
                f"Athena query {execution_id} still {state} after {timeout:.0f}s; try again later"
            )
        sleep(delay)
        waited += delay
        delay = min(delay * 2, 5.0)


def result_source(athena: Any, execution_id: str) -> Source:
    """The query's rows as a billing `Source` (header from the first row, as Athena returns it)."""
    pages = athena.get_paginator("get_query_results").paginate(QueryExecutionId=execution_id)
    iterator = checked_pages(
        pages, token="NextToken", api=f"Athena GetQueryResults of {execution_id}"
    )
    try:
        first = next(iterator)
    except StopIteration:  # pragma: no cover - boto3 always yields one page
        first = {}
    columns = [
        c.get("Name") or c.get("Label")
        for c in first.get("ResultSet", {}).get("ResultSetMetadata", {}).get("ColumnInfo", [])
    ]
    first_rows = [_values(row) for row in first.get("ResultSet", {}).get("Rows", [])]
    if first_rows and (not columns or [v or "" for v in first_rows[0]] == columns):
        header = [v or "" for v in first_rows[0]]  # SELECT results repeat the names as row 1
        first_rows = first_rows[1:]
    else:
        header = columns

    def rows() -> Iterator[tuple[int, Sequence[Any]]]:
        number = 0
        for values in first_rows:
            number += 1
            yield number, values
        for page in iterator:
            for row in page.get("ResultSet", {}).get("Rows", []):
                number += 1
                yield number, _values(row)

    return Source(f"athena:{execution_id}", [str(name) for name in header], rows())


def _values(row: dict[str, Any]) -> list[str | None]:
    return [cell.get("VarCharValue") for cell in row.get("Data", [])]


def import_athena(
    session_factory: sessionmaker[Session],
    athena: Any,
    *,
    database: str,
    table: str,
    output: str,
    fmt: str,
    start: date,
    end: date,
    workgroup: str | None = None,
    iam_principal: bool = False,
    now: datetime | None = None,
    tag_key: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    partition: str | None = BILLING_PERIOD,
) -> ImportReport:
    """Query, then stage and merge exactly like a file import (all or nothing)."""
    started = time.perf_counter()
    now = now or utcnow()
    query = build_query(
        fmt, database, table, start, end, iam_principal=iam_principal, partition=partition
    )
    execution_id = run_query(
        athena, query, database=database, output=output, workgroup=workgroup, sleep=sleep
    )
    statistics = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"].get(
        "Statistics", {}
    )
    scanned = statistics.get("DataScannedInBytes")
    source = result_source(athena, execution_id)
    report = ImportReport(inputs=[f"athena:{database}.{table} ({execution_id})"], format=fmt)
    report.bytes_scanned = None if scanned is None else int(scanned)
    if not source.header:  # no columns at all: an empty result, nothing to import
        report.seconds = time.perf_counter() - started
        return report
    layout = make_layout(source.header, fmt, source.name)
    errors = RowErrors()
    with transaction(session_factory) as session:
        stage = BillingStage(session, SOURCE, fmt=fmt)
        read_into(stage, source, layout, errors)
        errors.raise_if_any()
        if stage.currency:
            check_currency(session, stage.currency, report.inputs[0])
        report.facts = stage.merge(now) if stage.rows else 0
        report.attribution = attribute_facts(
            session, tag_key=tag_key, sources=[SOURCE], actor="import:athena"
        )
        fill_report(report, stage)
    refresh_after_writing(session_factory)
    report.seconds = time.perf_counter() - started
    return report

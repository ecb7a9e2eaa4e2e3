"""Daily billed Bedrock cost from Cost Explorer, Marketplace models included.

Third-party models bill under their own service names ("Claude 3.5 Sonnet (Amazon Bedrock
Edition)"), so a `SERVICE = Amazon Bedrock` filter misses most Claude spend. The names are
discovered each run with `GetDimensionValues(SERVICE, SearchString="Bedrock")`, and one
`GetCostAndUsage` query grouped by the cost-allocation tag and `USAGE_TYPE` covers them all.
Requests per run: 1 discovery + 1 per page per account, whatever the number of workloads.

Cost Explorer may restate the last ~48 h, so every run re-reads the trailing days and the
re-read window *replaces* what was stored: changed rows are updated, vanished rows deleted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from llmgov.collectors.paging import follow_pages
from llmgov.collectors.upserts import series_key, upsert_facts
from llmgov.models.errors import SourceError
from llmgov.models.facts import CostFact
from llmgov.models.ledger import CE_USAGE_RECORD_TYPES, check_amount, check_currency, settle

SOURCE = "cost_explorer"
SEARCH = "Bedrock"
QUANTITY_METRIC = "UsageQuantity"
# usage-type region prefixes (USE1-NovaPro-input-tokens → us-east-1)
REGION_PREFIXES = {
    "USE1": "us-east-1",
    "USE2": "us-east-2",
    "USW1": "us-west-1",
    "USW2": "us-west-2",
    "UGW1": "us-gov-west-1",
    "UGE1": "us-gov-east-1",
    "CAN1": "ca-central-1",
    "SAE1": "sa-east-1",
    "EU": "eu-west-1",
    "EUW1": "eu-west-1",
    "EUW2": "eu-west-2",
    "EUW3": "eu-west-3",
    "EUC1": "eu-central-1",
    "EUC2": "eu-central-2",
    "EUN1": "eu-north-1",
    "EUS1": "eu-south-1",
    "EUS2": "eu-south-2",
    "APN1": "ap-northeast-1",
    "APN2": "ap-northeast-2",
    "APN3": "ap-northeast-3",
    "APS1": "ap-southeast-1",
    "APS2": "ap-southeast-2",
    "APS3": "ap-south-1",
    "APS4": "ap-southeast-3",
    "APS5": "ap-south-2",
    "APE1": "ap-east-1",
    "MES1": "me-south-1",
    "MEC1": "me-central-1",
    "AFS1": "af-south-1",
    "ILC1": "il-central-1",
}


def region_of_usage_type(usage_type: str) -> str | None:
    prefix = usage_type.split("-", 1)[0] if "-" in usage_type else ""
    return REGION_PREFIXES.get(prefix)


def window(
    today: date,
    last_success: datetime | None,
    restate_days: int,
    first_run_days: int,
    since: date | None,
) -> tuple[date, date]:
    """[start, end) of days to (re-)read: the restatement tail, or the first-run history."""
    end = today + timedelta(days=1)
    if since is not None:
        start = since
    elif last_success is not None:
        start = min(last_success.date(), today) - timedelta(days=restate_days)
    else:
        start = today - timedelta(days=first_run_days)
    return max(start, today - timedelta(days=395)), end  # CE keeps ~13 months at daily


def discover_services(ce: Any, start: date, end: date, *, account: str | None = None) -> list[str]:
    """The SERVICE values containing "Bedrock" (first-party and Marketplace editions);
    `account` only names the account in a paging error."""
    arguments: dict[str, Any] = {
        "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
        "Dimension": "SERVICE",
        "SearchString": SEARCH,
        "Context": "COST_AND_USAGE",
    }
    names: list[str] = []
    for response in follow_pages(
        ce.get_dimension_values,
        arguments,
        token="NextPageToken",
        api="Cost Explorer GetDimensionValues",
        account=account,
    ):
        names += [item["Value"] for item in response.get("DimensionValues", [])]
    return sorted(set(names))


def fetch_groups(
    ce: Any,
    *,
    start: date,
    end: date,
    services: list[str],
    tag_key: str,
    metric: str,
    account_id: str | None,
    account: str | None = None,
) -> Iterator[tuple[date, bool, list[str], dict[str, Any]]]:
    """(day, estimated, group keys, metrics) for every group of every page.

    `account_id` filters on LINKED_ACCOUNT; `account` only names the account in a paging
    error (it defaults to `account_id`)."""
    conditions: list[dict[str, Any]] = [
        {"Dimensions": {"Key": "SERVICE", "Values": services}},
        # usage only: credits, refunds, tax, fees and commitment purchases are not LLM spend
        {"Dimensions": {"Key": "RECORD_TYPE", "Values": list(CE_USAGE_RECORD_TYPES)}},
    ]
    if account_id:
        # an organisation's payer sees its members too: keep each account's own spend
        conditions.append({"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": [account_id]}})
    service_filter: dict[str, Any] = {"And": conditions}
    arguments: dict[str, Any] = {
        "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
        "Granularity": "DAILY",
        "Metrics": [metric, QUANTITY_METRIC],
        "Filter": service_filter,
        "GroupBy": [{"Type": "TAG", "Key": tag_key}, {"Type": "DIMENSION", "Key": "USAGE_TYPE"}],
    }
    for response in follow_pages(
        ce.get_cost_and_usage,
        arguments,
        token="NextPageToken",
        api="Cost Explorer GetCostAndUsage",
        account=account or account_id,
    ):
        for result in response.get("ResultsByTime", []):
            day = date.fromisoformat(result["TimePeriod"]["Start"][:10])
            for group in result.get("Groups", []):
                yield (
                    day,
                    bool(result.get("Estimated")),
                    list(group.get("Keys", [])),
                    group.get("Metrics", {}),
                )


def collect(
    ce: Any,
    *,
    account: str,
    filter_account: bool,
    start: date,
    end: date,
    tag_key: str,
    metric: str,
    now: datetime,
) -> list[dict[str, Any]]:
    """CostFact rows for [start, end): one per (tag value, usage type, day)."""
    services = discover_services(ce, start, end, account=account)
    if not services:
        return []
    totals: dict[tuple[str, date], dict[str, Any]] = {}
    sums: dict[tuple[str, date], list] = defaultdict(lambda: [Decimal(0), 0.0])
    for day, estimated, keys, metrics in fetch_groups(
        ce,
        start=start,
        end=end,
        services=services,
        tag_key=tag_key,
        metric=metric,
        account_id=account if filter_account else None,
        account=account,
    ):
        tag_group, usage_type = [*keys, "", ""][:2]
        tag_value = tag_group.split("$", 1)[1] if "$" in tag_group else ""
        amount = metrics.get(metric, {})
        currency = amount.get("Unit") or "USD"
        key = series_key("ce", account, tag_value, usage_type)
        marketplace = "-MP:" in usage_type or usage_type.startswith("MP:")
        # `estimated`: Cost Explorer has not finalised the day; surfaces mark it an estimate
        dims: dict[str, Any] = {
            "account": account,
            "usage_type": usage_type,
            "services": services,
            "marketplace": marketplace,
            "estimated": estimated,
        }
        region = region_of_usage_type(usage_type)
        if region:
            dims["region"] = region
        if tag_value:
            dims["tags"] = {tag_key: tag_value}
        totals[(key, day)] = {
            "source": SOURCE,
            "series_key": key,
            "day": day,
            "account": account,
            "region": region,
            "service": "AWS Marketplace (Amazon Bedrock Edition)"
            if marketplace
            else "Amazon Bedrock",
            "usage_type": usage_type[:300],
            "resource_id": None,
            "currency": currency,
            "is_llm": True,
            "charge_kind": "usage",
            "dimensions": dims,
            "collected_at": now,
        }
        # a group split across pages is added up, never taken twice
        sums[(key, day)][0] += Decimal(amount.get("Amount") or "0")
        sums[(key, day)][1] += float(metrics.get(QUANTITY_METRIC, {}).get("Amount") or 0)
    rows = []
    for key, row in totals.items():
        cost, quantity = sums[key]
        rows.append({**row, "cost": cost, "usage_quantity": quantity})
    return rows


def write(
    session: Session, rows: list[dict[str, Any]], *, account: str, start: date, end: date
) -> int:
    """Replace the window: upsert what Cost Explorer returned, delete what it no longer does;
    then settle which source counts for those days (an export imported for them wins)."""
    for currency in sorted({row["currency"] for row in rows}):
        check_currency(session, currency, f"Cost Explorer for account {account}")
    for row in rows:
        try:
            check_amount(row["cost"], f"Cost Explorer's amount for {row['day']}")
        except ValueError as error:
            raise SourceError(f"account {account}: {error}") from None
    written = upsert_facts(session, CostFact, rows)
    fresh = {(row["series_key"], row["day"]) for row in rows}
    stored = session.execute(
        select(CostFact.id, CostFact.series_key, CostFact.day).where(
            CostFact.source == SOURCE,
            CostFact.account == account,
            CostFact.day >= start,
            CostFact.day < end,
        )
    ).all()
    stale = [fact_id for fact_id, key, day in stored if (key, day) not in fresh]
    for index in range(0, len(stale), 500):
        session.execute(delete(CostFact).where(CostFact.id.in_(stale[index : index + 500])))
    settle(session, start, end - timedelta(days=1))
    return written

"""The ledger's billing rules, end to end through `llmgov import-billing` and `llmgov cost`:
credits, refunds and tax are adjustments and never spend (FOCUS, CUR 2.0, Cost Explorer); a
correction adjusts its original day; one source counts per account and day; one currency;
amounts outside the accepted range are refused with the row named."""

from __future__ import annotations

import csv
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from llmgov.bot.cli import main
from llmgov.collectors import cost_explorer
from llmgov.collectors.attribution import attribute_facts
from llmgov.models.facts import CostFact
from llmgov.models.ledger import CE_USAGE_RECORD_TYPES
from llmgov.models.registry import RuleKind, Workload
from tests.collectors.helpers import add_workload

ACCOUNT = "111122223333"
OCTOBER = [dt.date(2026, 10, 1) + dt.timedelta(days=i) for i in range(31)]
AS_OF = "2026-11-20"

FOCUS_HEADER = [
    "BilledCost", "BillingCurrency", "ChargePeriodStart", "ServiceName", "SubAccountId",
    "ChargeCategory", "ChargeClass", "BillingPeriodStart", "Tags", "x_UsageType",
]  # fmt: skip
CUR_HEADER = [
    "line_item_unblended_cost", "line_item_currency_code", "line_item_usage_start_date",
    "line_item_product_code", "line_item_usage_account_id", "line_item_line_item_type",
    "bill_billing_period_start_date", "line_item_usage_type", "resource_tags", "product",
]  # fmt: skip
TAGS = json.dumps({"llm-workload": "chat"})


def focus(
    day, cost, category="Usage", charge_class="", period=None, currency="USD",
    service="Amazon Bedrock",
):  # fmt: skip
    period = period or day.replace(day=1)
    return [
        str(cost), currency, f"{day}T00:00:00Z", service, ACCOUNT, category,
        charge_class, f"{period}T00:00:00Z", TAGS, "USE1-NovaPro-input-tokens",
    ]  # fmt: skip


def cur(day, cost, line_type="Usage", period=None):
    period = period or day.replace(day=1)
    return [
        str(cost), "USD", f"{day}T00:00:00Z", "AmazonBedrock", ACCOUNT, line_type,
        f"{period}T00:00:00Z", "USE1-NovaPro-input-tokens", json.dumps({"user_llm_workload": "chat"}),
        json.dumps({"product_name": "Amazon Bedrock"}),
    ]  # fmt: skip


def write(path: Path, header: list[str], rows: list[list[Any]]) -> str:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


@pytest.fixture
def chat(session_factory):
    with session_factory.begin() as session:
        add_workload(
            session,
            "chat",
            (RuleKind.TAG.value, {"key": "llm-workload", "value": "chat"}, 100),
            budget_monthly=Decimal(5000),
        )


def run(capsys, *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def imported(capsys, *args: str) -> None:
    status, _, err = run(capsys, "import-billing", *args)
    assert status == 0, err


def cost(capsys, period: str = "2026-10", scope: str = "chat") -> dict[str, Any]:
    status, out, err = run(capsys, "cost", scope, period, "--format", "json", "--as-of", AS_OF)
    assert status == 0, err
    return json.loads(out)


def day_cost(session_factory, day: dt.date) -> Decimal:
    with session_factory() as session:
        rows = session.execute(
            select(CostFact.cost).where(
                CostFact.day == day,
                CostFact.charge_kind == "usage",
                CostFact.superseded.is_(False),
            )
        ).scalars()
        return sum((Decimal(value) for value in rows), Decimal(0))


def test_focus_credits_refunds_and_tax_are_adjustments_never_spend(capsys, tmp_path, chat):
    usage = [focus(day, 100) for day in OCTOBER]
    path = write(tmp_path / "focus.csv", FOCUS_HEADER, usage)
    imported(capsys, path)
    before = cost(capsys)
    assert before["total"] == 3100 and before["adjustments"] == {}
    extra = [
        focus(dt.date(2026, 10, 10), -1000, "Credit"),
        focus(dt.date(2026, 10, 31), 300, "Tax"),
        focus(dt.date(2026, 10, 20), -50, "Adjustment"),
        focus(dt.date(2026, 10, 1), 2000, "Purchase"),
    ]
    path = write(tmp_path / "focus.csv", FOCUS_HEADER, usage + extra)
    imported(capsys, path)
    after = cost(capsys)
    assert after["total"] == 3100
    assert after["workloads"][0]["total"] == 3100
    assert after["adjustments"] == {
        "adjustment": -50.0,
        "credit": -1000.0,
        "purchase": 2000.0,
        "tax": 300.0,
    }
    assert after["budget_status"] == before["budget_status"]


def test_focus_correction_adjusts_its_original_day(capsys, tmp_path, chat, session_factory):
    october = write(tmp_path / "oct.csv", FOCUS_HEADER, [focus(d, 100) for d in OCTOBER])
    imported(capsys, october)
    november = [focus(dt.date(2026, 11, d), 100) for d in range(1, 16)]
    november.append(focus(dt.date(2026, 10, 15), -10, "Usage", "Correction", dt.date(2026, 11, 1)))
    imported(capsys, write(tmp_path / "nov.csv", FOCUS_HEADER, november))
    assert day_cost(session_factory, dt.date(2026, 10, 15)) == Decimal(90)
    assert cost(capsys)["total"] == 3090
    imported(capsys, october)  # October again: its own rows replaced, the correction kept
    assert cost(capsys)["total"] == 3090


def test_cur2_types_and_a_late_adjustment(capsys, tmp_path, chat, session_factory):
    rows = [cur(day, 100) for day in OCTOBER] + [
        cur(dt.date(2026, 10, 3), -500, "Credit"),
        cur(dt.date(2026, 10, 4), -25, "Refund"),
        cur(dt.date(2026, 10, 31), 310, "Tax"),
        cur(dt.date(2026, 10, 1), 42, "SavingsPlanRecurringFee"),
        cur(dt.date(2026, 10, 2), 100, "DiscountedUsage"),
    ]
    imported(capsys, write(tmp_path / "oct.csv", CUR_HEADER, rows))
    report = cost(capsys)
    assert report["total"] == 3200
    assert report["adjustments"] == {
        "credit": -500.0,
        "purchase": 42.0,
        "refund": -25.0,
        "tax": 310.0,
    }
    # a November bill restating 15 Oct adds to that day
    late = [cur(dt.date(2026, 10, 15), -10, "Usage", dt.date(2026, 11, 1))]
    imported(capsys, write(tmp_path / "nov.csv", CUR_HEADER, late))
    assert day_cost(session_factory, dt.date(2026, 10, 15)) == Decimal(90)
    assert cost(capsys)["total"] == 3190


def test_the_same_month_as_focus_and_cur2_counts_once(capsys, tmp_path, chat):
    imported(capsys, write(tmp_path / "f.csv", FOCUS_HEADER, [focus(d, 100) for d in OCTOBER]))
    assert cost(capsys)["total"] == 3100
    imported(capsys, write(tmp_path / "c.csv", CUR_HEADER, [cur(d, 101) for d in OCTOBER]))
    # the export imported last describes the month; never the sum of both
    assert cost(capsys)["total"] == 3131
    assert cost(capsys, scope="all")["total"] == 3131


class FakeCostExplorer:
    """Cost Explorer answering from a list of (day, record type, usage type, amount), applying
    the RECORD_TYPE filter of the request as AWS does."""

    def __init__(self, lines, estimated=()):
        self.lines = lines
        self.estimated = {day.isoformat() for day in estimated}
        self.requests: list[dict[str, Any]] = []

    def get_dimension_values(self, **arguments):
        return {"DimensionValues": [{"Value": "Amazon Bedrock"}]}

    def get_cost_and_usage(self, **arguments):
        self.requests.append(arguments)
        conditions = arguments["Filter"].get("And", [arguments["Filter"]])
        wanted = None
        for condition in conditions:
            dimension = condition.get("Dimensions", {})
            if dimension.get("Key") == "RECORD_TYPE":
                wanted = set(dimension["Values"])
        results: dict[str, list] = {}
        for day, record_type, usage_type, amount in self.lines:
            if wanted is not None and record_type not in wanted:
                continue
            results.setdefault(day.isoformat(), []).append(
                {
                    "Keys": ["llm-workload$chat", usage_type],
                    "Metrics": {
                        "UnblendedCost": {"Amount": str(amount), "Unit": "USD"},
                        "UsageQuantity": {"Amount": "1", "Unit": "N/A"},
                    },
                }
            )
        return {
            "ResultsByTime": [
                {"TimePeriod": {"Start": day}, "Groups": groups, "Estimated": day in self.estimated}
                for day, groups in sorted(results.items())
            ]
        }


def collect_ce(session_factory, client, start: dt.date, end: dt.date) -> None:
    """What `collect` does for a Cost Explorer scope: fetch, write the window, attribute."""
    rows = cost_explorer.collect(
        client,
        account=ACCOUNT,
        filter_account=True,
        start=start,
        end=end,
        tag_key="llm-workload",
        metric="UnblendedCost",
        now=dt.datetime(2026, 11, 2, tzinfo=dt.UTC),
    )
    with session_factory.begin() as session:
        cost_explorer.write(session, rows, account=ACCOUNT, start=start, end=end)
        attribute_facts(session, tag_key="llm-workload", sources=["cost_explorer"])


def test_cost_explorer_reads_usage_only_and_an_export_replaces_it(
    capsys, tmp_path, chat, session_factory
):
    lines = [(d, "Usage", "USE1-NovaPro-input-tokens", 90) for d in OCTOBER]
    lines += [
        (dt.date(2026, 10, 5), "Credit", "USE1-NovaPro-input-tokens", -700),
        (dt.date(2026, 10, 6), "Refund", "USE1-NovaPro-input-tokens", -20),
        (dt.date(2026, 10, 7), "Tax", "Tax", 250),
    ]
    client = FakeCostExplorer(lines)
    collect_ce(session_factory, client, OCTOBER[0], dt.date(2026, 11, 1))
    sent = client.requests[0]["Filter"]["And"]
    assert {"Dimensions": {"Key": "RECORD_TYPE", "Values": list(CE_USAGE_RECORD_TYPES)}} in sent
    assert cost(capsys)["total"] == 31 * 90
    # the export for the first half of October replaces Cost Explorer for those days only
    export = [focus(d, 100) for d in OCTOBER[:15]]
    imported(capsys, write(tmp_path / "half.csv", FOCUS_HEADER, export))
    assert cost(capsys)["total"] == 15 * 100 + 16 * 90
    # Cost Explorer collected again later does not take the days back
    collect_ce(session_factory, client, OCTOBER[0], dt.date(2026, 11, 1))
    assert cost(capsys)["total"] == 15 * 100 + 16 * 90


def test_a_second_currency_is_refused(capsys, tmp_path, chat):
    imported(capsys, write(tmp_path / "usd.csv", FOCUS_HEADER, [focus(d, 100) for d in OCTOBER]))
    eur = [focus(dt.date(2026, 11, 1), 9000, currency="EUR")]
    status, _, err = run(capsys, "import-billing", write(tmp_path / "eur.csv", FOCUS_HEADER, eur))
    assert status == 2
    assert "billed in EUR" in err and "already stored is in USD" in err
    assert cost(capsys)["total"] == 3100


@pytest.mark.parametrize("amount", ["1e400", "-99999999999999"])
def test_amounts_outside_the_range_are_refused_with_the_row(capsys, tmp_path, chat, amount):
    rows = [focus(dt.date(2026, 10, 1), 100), focus(dt.date(2026, 10, 2), amount)]
    status, _, err = run(capsys, "import-billing", write(tmp_path / "bad.csv", FOCUS_HEADER, rows))
    assert status == 2
    assert "row 2" in err and "outside the accepted range" in err
    assert "nothing was imported" in err


def test_attributed_non_llm_cost_is_not_llm_spend(capsys, tmp_path, chat, session_factory):
    """$500 of S3 carrying the workload's tag is not LLM spend, on `llmgov cost` and in the
    checks' arrays alike."""
    rows = [focus(d, 100) for d in OCTOBER]
    rows.append(focus(dt.date(2026, 10, 9), 500, service="Amazon Simple Storage Service"))
    imported(capsys, write(tmp_path / "oct.csv", FOCUS_HEADER, rows))
    assert cost(capsys)["total"] == 3100
    with session_factory.begin() as session:
        session.scalar(select(Workload).where(Workload.slug == "chat")).budget_monthly = 3000
    status = main(["check", "--dry-run", "--format", "json", "--as-of", "2026-10-31"])
    findings = json.loads(capsys.readouterr().out)
    assert status == 0
    [budget] = [f for f in findings if f["kind"].startswith("budget")]
    assert budget["details"]["month_to_date"] == 3100


def test_cost_explorer_estimated_days_are_marked(capsys, chat, session_factory):
    lines = [(d, "Usage", "USE1-NovaPro-input-tokens", 90) for d in OCTOBER]
    client = FakeCostExplorer(lines, estimated=OCTOBER[-2:])
    collect_ce(session_factory, client, OCTOBER[0], dt.date(2026, 11, 1))
    report = cost(capsys)
    assert report["provisional_days"] == ["2026-10-30", "2026-10-31"]
    assert "Cost Explorer marks 2 day(s) from 30 Oct to 31 Oct as estimated" in " ".join(
        report["notes"]
    )

"""Missing data is never $0: `llmgov cost` says how old the data is at the top, lists each
source's freshness in JSON, and gives no "on track" or "why it changed" on missing days."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from sqlalchemy import select

from llmgov.bot.cli import main
from llmgov.models.facts import UsageFact
from llmgov.models.registry import Workload
from tests.collectors.test_ledger_sources import FOCUS_HEADER, chat, focus, write  # noqa: F401

pytestmark = pytest.mark.usefixtures("chat")  # one workload, `chat`, with a $5,000 budget

LAST = dt.date(2026, 11, 26)
DAYS = [LAST - dt.timedelta(days=i) for i in range(60)][::-1]


def run(capsys, *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_stale_billing_is_said_at_the_top_and_never_reads_as_on_track(capsys, tmp_path):
    rows = [focus(day, 100 if day < dt.date(2026, 11, 10) else 60) for day in DAYS]
    assert run(capsys, "import-billing", write(tmp_path / "f.csv", FOCUS_HEADER, rows))[0] == 0
    asked = "2026-12-08"  # twelve days after the last billed day
    cap = capsys
    status, out, _ = run(cap, "cost", "chat", "30d", "--format", "json", "--as-of", asked)
    assert status == 0
    data = json.loads(out)
    [billing] = [f for f in data["freshness"] if f["source"] == "focus"]
    assert billing["data_through"] == "2026-11-26" and billing["stale"] is True
    assert billing["last_run"] is not None
    assert data["data_warning"] == "Billing data through 26 Nov (12 days old)"
    assert data["change"] is None
    # no month-to-date figure and no "ok": the one budget rule says unknown on stale data
    assert data["month_to_date"] is None
    assert data["budget_status"] == "unknown"
    assert [w["budget_status"] for w in data["workloads"]] == ["unknown"]
    status, text, _ = run(cap, "cost", "chat", "30d", "--as-of", asked)
    lines = [line for line in text.splitlines() if line.strip()]
    assert "Billing data through 26 Nov (12 days old)" in lines[2]  # right under the title
    assert "on track" not in text and "Why it changed" not in text
    assert "Month to date: no data yet" in text and "no data since" in text
    assert "$0" not in text.split("Month to date:")[1].split("\n")[0]  # missing is not $0
    assert "estimated from tokens" not in text
    # asked the day after the last bill, the same data is fresh
    _, out, _ = run(cap, "cost", "chat", "30d", "--format", "json", "--as-of", "2026-11-27")
    fresh = json.loads(out)
    assert fresh["data_warning"] is None
    assert fresh["budget_status"] != "unknown" and fresh["month_to_date"] is not None
    assert [f["stale"] for f in fresh["freshness"]] == [False]


def test_a_fresh_install_says_there_is_no_data(capsys):
    status, text, _ = run(capsys, "cost", "chat", "30d")
    assert status == 0
    assert "No spend data has arrived yet" in text
    assert "on track" not in text
    _, out, _ = run(capsys, "cost", "chat", "30d", "--format", "json")
    assert json.loads(out)["freshness"] == []


def test_a_partial_today_does_not_pull_the_projection_down(capsys, tmp_path, session_factory):
    """Billed $100 a day through yesterday, and today's first hour estimated at $1: the
    month-end projection rests on whole days only."""
    today = dt.datetime.now(dt.UTC).date()
    days = [today - dt.timedelta(days=i) for i in range(1, 50)][::-1]
    rows = [focus(day, 100) for day in days]
    assert run(capsys, "import-billing", write(tmp_path / "f.csv", FOCUS_HEADER, rows))[0] == 0
    with session_factory.begin() as session:
        chat = session.scalar(select(Workload.id).where(Workload.slug == "chat"))
        session.add(
            UsageFact(
                source="bedrock_cloudwatch",
                series_key="today",
                hour=dt.datetime.combine(today, dt.time(0), tzinfo=dt.UTC),
                invocations=1.0,
                estimated_cost=Decimal(1),
                workload_id=chat,
            )
        )
    _, out, _ = run(capsys, "cost", "chat", "mtd", "--format", "json")
    data = json.loads(out)
    month_days = (today.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(1)
    expected = 100 * (month_days.day - today.day) + data["month_to_date"]
    for projection in (data["projected_month_end"], data["workloads"][0]["projected_month_end"]):
        # a flat $100 a day: today's first hour must not read as a $1 day (it gave -4%)
        assert projection["point"] == pytest.approx(expected + 100, rel=0.01)
        assert projection["high"] - projection["low"] < 0.05 * projection["point"]

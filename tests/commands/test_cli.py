"""`llmgov cost` and `llmgov decide`: the JSON contracts, CSV for finance, exit statuses."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import pytest

from llmgov.bot.cli import main
from tests.commands.world import AS_OF

AS_OF_ARG = ["--as-of", AS_OF.isoformat()]


def run(capsys, *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_cost_json_contract(capsys, world):
    status, out, _ = run(capsys, "cost", "team:search", "30d", "--format", "json", *AS_OF_ARG)
    assert status == 0
    data = json.loads(out)
    assert {"scope", "period", "currency", "total", "unattributed", "workloads"} <= set(data)
    assert data["period"]["start"] == "2026-10-22" and data["period"]["end"] == "2026-11-20"
    for row in data["workloads"]:
        assert {
            "slug",
            "owner",
            "total",
            "month_to_date",
            "projected_month_end",
            "budget",
            "budget_exhausted_on",
        } <= set(row)
        assert set(row["projected_month_end"]) == {"point", "low", "high"}
    assert data["total"] == pytest.approx(sum(r["total"] for r in data["workloads"]), abs=0.011)


def test_cost_without_scope_is_everything_or_the_given_user(capsys, world):
    _, out, _ = run(capsys, "cost", "--format", "json", *AS_OF_ARG)
    assert json.loads(out)["scope"] == "all"
    _, out, _ = run(capsys, "cost", "--user", "U0BO00002", "--format", "json", *AS_OF_ARG)
    assert [r["slug"] for r in json.loads(out)["workloads"]] == [
        "search-summaries",
        "search-rerank",
    ]


def test_cost_csv_rows_add_up_to_the_total(capsys, world):
    _, out, _ = run(capsys, "cost", "all", "30d", "--format", "csv", *AS_OF_ARG)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["workload"] for r in rows][-1] == "(unattributed)"
    _, js, _ = run(capsys, "cost", "all", "30d", "--format", "json", *AS_OF_ARG)
    total = Decimal(str(json.loads(js)["total"]))
    assert abs(sum(Decimal(r["total"]) for r in rows) - total) <= Decimal("0.05")


def test_cost_csv_chargeback_by_team(capsys, world):
    _, out, _ = run(capsys, "cost", "all", "30d", "--format", "csv", "--by", "team", *AS_OF_ARG)
    rows = {r["team"]: r for r in csv.DictReader(io.StringIO(out))}
    assert list(rows) == ["search", "support", "(none)", "(unattributed)"]
    assert rows["search"]["workloads"] == "2" and rows["support"]["budget"] == "2000.0"
    assert sum(float(r["share"]) for r in rows.values()) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["cost", "2026-13"],
            "llmgov cost: `2026-13` is not a month: write it as YYYY-MM. "
            "For example: llmgov cost all 2026-10",
        ),
        (["cost", "nosuch"], "llmgov cost: There is no workload `nosuch`."),
        (["cost", "--user", "ana"], "llmgov cost: --user 'ana' is not a Slack user id"),
        (["decide"], "llmgov decide: give a workload slug or key=values"),
        (
            ["decide", "x", "peak=2"],
            "llmgov decide: `peak` is not a key I know. Did you mean `peak_to_mean`?",
        ),
        (["decide", "ghost"], "llmgov decide: There is no workload `ghost`."),
    ],
)
def test_bad_input_exits_2_with_a_message_on_stderr(capsys, world, args, message):
    status, out, err = run(capsys, *args)
    assert status == 2 and out == ""
    assert err.startswith(message)


def test_decide_json_contract(capsys, world):
    status, out, _ = run(capsys, "decide", "search-summaries", "--format", "json", *AS_OF_ARG)
    assert status == 0
    data = json.loads(out)
    assert {"recommendation", "criteria", "monthly_cost", "break_even", "currency"} <= set(data)
    assert data["recommendation"] in ("bedrock", "self_hosted", "hybrid", "fix_ownership_first")
    assert {"bedrock", "self_hosted", "self_hosted_people"} <= set(data["monthly_cost"])
    assert all({"holds", "evidence"} <= set(c) for c in data["criteria"])
    assert isinstance(data["break_even"], float)


def test_text_output_reads_like_the_slack_answer(capsys, world):
    _, out, _ = run(capsys, "cost", "search-summaries", "7d", *AS_OF_ARG)
    assert out.startswith("LLM spend · search-summaries · last 7 days\n")
    assert "Owner: @U0ANA0001 · backup @U0BO00002" in out
    _, out, _ = run(capsys, "decide", "search-rerank", *AS_OF_ARG)
    assert "Stay on Bedrock" in out and "[Record decision]" in out

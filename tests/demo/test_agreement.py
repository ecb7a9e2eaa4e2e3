"""The surfaces agree, on the demo database: the digest's week_spend is what `llmgov cost
SLUG WEEK_START..WEEK_END` answers, `check` raises a budget finding exactly for the
workloads whose budget_status is projected_overrun or exceeded, and the gap kinds of
`gaps`, `cost all` and `check` are the same."""

from __future__ import annotations

import io
import json
from collections import defaultdict
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from typing import Any

import pytest

from llmgov.bot.cli import main
from llmgov.bot.demo.database import empty_tables
from llmgov.collectors.sample_data import SAMPLE_END

AS_OF = ["--as-of", SAMPLE_END.isoformat()]
REGISTRY_FINDINGS = {
    "unowned_workload",
    "owner_inactive",
    "missing_budget",
    "missing_exit_strategy",
}


def cli(*argv: str) -> Any:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    assert code == 0, err.getvalue()
    return json.loads(out.getvalue())


@pytest.fixture(scope="module")
def demo(_schema_engine, database_url) -> Iterator[None]:
    try:
        out = io.StringIO()
        with redirect_stdout(out), redirect_stderr(io.StringIO()):
            assert main(["demo", "--database-url", database_url]) == 0
        yield
    finally:
        with _schema_engine.begin() as connection:
            empty_tables(connection)


@pytest.fixture
def on_demo(demo, database_url, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LLMGOV_CHANNEL", "C0GOVERN01")


@pytest.mark.usefixtures("on_demo")
def test_digest_week_spend_is_the_cost_of_that_week():
    digests = cli("digest", "--dry-run", "--format", "json", *AS_OF)["digests"]
    assert digests
    compared = 0
    for digest in digests:
        week = f"{digest['week_start']}..{digest['week_end']}"
        assert digest["data_through"] == SAMPLE_END.isoformat()
        for workload in digest["workloads"]:
            answer = cli("cost", workload["slug"], week, "--format", "json", *AS_OF)
            assert answer["total"] == pytest.approx(workload["week_spend"], abs=0.011), workload
            compared += 1
    assert compared >= 10


@pytest.mark.usefixtures("on_demo")
def test_a_budget_finding_exactly_when_the_budget_status_says_so():
    findings = cli("check", "--dry-run", "--format", "json", *AS_OF)
    budget = {f["workload"] for f in findings if f["kind"].startswith("budget_")}
    workloads = cli("cost", "all", "mtd", "--format", "json", *AS_OF)["workloads"]
    statuses = {w["slug"]: w["budget_status"] for w in workloads}
    alerted = {slug for slug, s in statuses.items() if s in ("projected_overrun", "exceeded")}
    assert budget == alerted and budget  # the demo has budgets running over
    assert set(statuses.values()) <= {"ok", "at_risk", "projected_overrun", "exceeded", "no_budget"}


@pytest.mark.usefixtures("on_demo")
def test_gap_kinds_agree_across_gaps_cost_and_check():
    review = cli("gaps", "--dry-run", "--format", "json", *AS_OF)["review"]
    from_gaps = {g["workload"]: set(g["kinds"]) for g in review["gaps"] if g["workload"]}
    assert 0 <= review["owned_share"] <= 1
    workloads = cli("cost", "all", "mtd", "--format", "json", *AS_OF)["workloads"]
    from_cost = {w["slug"]: set(w["gaps"]) for w in workloads if w["gaps"]}
    from_check: dict[str, set[str]] = defaultdict(set)
    for finding in cli("check", "--dry-run", "--format", "json", *AS_OF):
        if finding["kind"] in REGISTRY_FINDINGS:
            from_check[finding["workload"]].add(finding["kind"])
            if finding["details"].get("discovered_from"):  # carried by unowned_workload
                from_check[finding["workload"]].add("discovered_workload")
    assert from_gaps == from_cost == dict(from_check)
    assert len(from_gaps) >= 10
    unattributed = [g for g in review["gaps"] if g["workload"] is None]
    assert unattributed and all(g["kinds"] == ["unattributed_spend"] for g in unattributed)

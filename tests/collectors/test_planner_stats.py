"""SQLite's planner statistics follow the data: re-analysed when a table grows tenfold
(models/planner_stats.py), and after every collection."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import text

from llmgov.collectors.billing_files import import_billing
from llmgov.collectors.run import collect
from llmgov.models.planner_stats import GROWTH_FACTOR, refresh_planner_statistics

NOW = dt.datetime(2026, 11, 26, 23, 0, tzinfo=dt.UTC)
FOCUS_SAMPLE = Path(__file__).parent.parent / "fixtures" / "billing" / "focus_1_0_sample.csv"


@pytest.fixture
def sqlite_engine(engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite only: PostgreSQL's autovacuum keeps its statistics")
    with engine.begin() as connection:  # forget what earlier tests left analysed
        connection.exec_driver_sql("ANALYZE sqlite_schema")  # creates sqlite_stat1 if missing
        connection.exec_driver_sql("DELETE FROM sqlite_stat1")
    return engine


def add_cost_facts(engine, count: int, start: int = 0) -> None:
    rows = [
        {"key": f"series-{start + n}", "day": dt.date(2026, 11, 1) + dt.timedelta(days=n % 20)}
        for n in range(count)
    ]
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO cost_facts (source, series_key, day, cost, currency, is_llm, "
                "dimensions, collected_at) VALUES ('ce', :key, :day, 1.0, 'USD', 1, '{}', "
                "'2026-11-26 00:00:00.000000')"
            ),
            rows,
        )


def analysed_rows(engine, table: str) -> int | None:
    with engine.connect() as connection:
        counts = [
            int(stat.split()[0])
            for (stat,) in connection.execute(
                text("SELECT stat FROM sqlite_stat1 WHERE tbl = :table"), {"table": table}
            )
        ]
    return max(counts) if counts else None


def test_a_table_is_analysed_when_it_grows_tenfold_and_only_then(sqlite_engine):
    assert refresh_planner_statistics(sqlite_engine) == []  # all empty: nothing to plan for
    add_cost_facts(sqlite_engine, 200)
    assert refresh_planner_statistics(sqlite_engine) == ["cost_facts"]
    assert analysed_rows(sqlite_engine, "cost_facts") == 200
    assert refresh_planner_statistics(sqlite_engine) == []  # unchanged
    add_cost_facts(sqlite_engine, 200 * (GROWTH_FACTOR - 2), start=200)  # 9x: not yet
    assert refresh_planner_statistics(sqlite_engine) == []
    add_cost_facts(sqlite_engine, 400, start=200 * (GROWTH_FACTOR - 1))  # 11x
    assert refresh_planner_statistics(sqlite_engine) == ["cost_facts"]
    # analysis_limit samples each index: the row count is an estimate
    assert analysed_rows(sqlite_engine, "cost_facts") == pytest.approx(2200, rel=0.1)


def test_a_collection_leaves_statistics_for_the_facts_it_wrote(sqlite_engine, session_factory):
    assert analysed_rows(sqlite_engine, "usage_facts") is None
    report = collect(session_factory, NOW, sources=["sample"], since=dt.date(2026, 11, 20))
    assert report.ok, report.results
    with sqlite_engine.connect() as connection:
        usage = connection.execute(text("SELECT count(*) FROM usage_facts")).scalar()
    assert usage > 0
    assert analysed_rows(sqlite_engine, "usage_facts") == pytest.approx(usage, rel=0.1)


def test_a_billing_import_leaves_statistics_for_the_facts_it_wrote(sqlite_engine, session_factory):
    assert analysed_rows(sqlite_engine, "cost_facts") is None
    report = import_billing(session_factory, [FOCUS_SAMPLE])
    assert report.facts > 0
    with sqlite_engine.connect() as connection:
        billed = connection.execute(text("SELECT count(*) FROM cost_facts")).scalar()
    assert analysed_rows(sqlite_engine, "cost_facts") == pytest.approx(billed, rel=0.1)


def test_postgresql_is_left_to_autovacuum(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    assert refresh_planner_statistics(engine) == []

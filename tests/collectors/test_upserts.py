"""Idempotent upserts on (source, series_key, bucket), on SQLite and PostgreSQL alike."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select

from llmgov.collectors.upserts import SERIES_KEY_MAX, series_key, upsert_facts
from llmgov.models.facts import CostFact, GpuFact
from tests.collectors.helpers import add_workload

DAY = dt.date(2026, 11, 19)


def row(key: str, cost: str, day: dt.date = DAY) -> dict:
    return {
        "source": "cost_explorer", "series_key": key, "day": day, "cost": Decimal(cost), "currency": "USD",
        "is_llm": True, "dimensions": {"k": key}, "collected_at": dt.datetime(2026, 11, 20, tzinfo=dt.UTC),
    }  # fmt: skip


def test_upsert_replaces_on_the_natural_key_and_keeps_attribution(session):
    workload = add_workload(session, "w")
    upsert_facts(
        session,
        CostFact,
        [row("a", "1.00"), row("b", "2.00"), row("a", "1.00", DAY + dt.timedelta(days=1))],
    )
    fact = session.scalar(select(CostFact).where(CostFact.series_key == "a", CostFact.day == DAY))
    fact.workload_id = workload.id
    session.flush()
    upsert_facts(session, CostFact, [row("a", "1.50")])
    session.expire_all()
    facts = {(f.series_key, f.day): f for f in session.scalars(select(CostFact))}
    assert len(facts) == 3
    assert facts[("a", DAY)].cost == Decimal("1.50")
    assert facts[("a", DAY)].id == fact.id and facts[("a", DAY)].workload_id == workload.id


def test_a_batch_repeating_a_key_keeps_the_last_and_does_not_fail(session):
    # PostgreSQL refuses ON CONFLICT touching one row twice in a statement
    upsert_facts(
        session, CostFact, [row("a", "1"), row("a", "3")] + [row(f"k{i}", "1") for i in range(1200)]
    )
    assert session.scalar(select(CostFact.cost).where(CostFact.series_key == "a")) == Decimal(3)


def test_gpu_facts_upsert_on_the_hour(session):
    hour = dt.datetime(2026, 11, 19, 10, tzinfo=dt.UTC)
    base = {
        "source": "cwagent",
        "series_key": "i-1",
        "hour": hour,
        "resource_id": "i-1",
        "gpu_count": 4,
    }
    upsert_facts(session, GpuFact, [{**base, "utilisation_pct": 10.0}])
    upsert_facts(session, GpuFact, [{**base, "utilisation_pct": 12.5}])
    assert [f.utilisation_pct for f in session.scalars(select(GpuFact))] == [12.5]


def test_series_keys_are_stable_and_fit_the_column():
    assert series_key("ce", "111122223333", None, "USE1-x") == "ce|111122223333||USE1-x"
    long = series_key("focus", "x" * 2000)
    assert len(long) == SERIES_KEY_MAX and long == series_key("focus", "x" * 2000)
    assert long != series_key("focus", "x" * 1999 + "y")

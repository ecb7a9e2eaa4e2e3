"""Idempotent writes of facts on their natural key `(source, series_key, bucket)`.

A re-run, or Cost Explorer restating a day, replaces the row; it never adds a second one.
SQLite and PostgreSQL both speak `INSERT ... ON CONFLICT DO UPDATE`; SQLAlchemy builds it
per dialect. Attribution columns are left alone on conflict: the attribution pass owns them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from llmgov.models.facts import CostFact, GpuFact, UsageFact
from llmgov.models.series_keys import SERIES_KEY_MAX, series_key  # noqa: F401 (collectors import them here)

FactModel = type[UsageFact] | type[CostFact] | type[GpuFact]

# the time bucket column of each fact table (hourly or daily)
BUCKET_COLUMN: dict[str, str] = {
    UsageFact.__tablename__: "hour",
    CostFact.__tablename__: "day",
    GpuFact.__tablename__: "hour",
}
# never overwritten by a collector's upsert (the attribution pass owns them)
PRESERVED_ON_CONFLICT = frozenset({"id", "workload_id", "rule_id"})
CHUNK = 500  # rows per INSERT statement: well under SQLite's bound-parameter limit


def dialect_insert(session: Session, table: Table):
    """The dialect's INSERT construct that supports ON CONFLICT."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"upserts support SQLite and PostgreSQL, not {name}")


def conflict_key(table: Table) -> list[str]:
    return ["source", "series_key", BUCKET_COLUMN[table.name]]


def upsert_facts(session: Session, model: FactModel, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert or replace `rows` (dicts of column values) on the natural key; returns the count.

    Every row of one call must carry the same set of columns.
    """
    table: Table = model.__table__  # type: ignore[assignment]
    key = conflict_key(table)
    written = 0
    batch: list[Mapping[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= CHUNK:
            written += _write(session, table, key, batch)
            batch = []
    if batch:
        written += _write(session, table, key, batch)
    return written


def _write(session: Session, table: Table, key: Sequence[str], batch: list[Mapping]) -> int:
    # one row per key: PostgreSQL refuses a statement that touches a row twice
    # ("ON CONFLICT DO UPDATE command cannot affect row a second time"); the last one wins.
    unique: dict[tuple, Mapping[str, Any]] = {tuple(row[k] for k in key): row for row in batch}
    rows = list(unique.values())
    statement = dialect_insert(session, table)
    updates = {
        name: statement.excluded[name]
        for name in rows[0]
        if name not in key and name not in PRESERVED_ON_CONFLICT
    }
    statement = statement.on_conflict_do_update(index_elements=list(key), set_=updates)
    # executemany of one cached statement: compiling a 500-row VALUES clause costs more than it saves
    session.execute(statement, rows)
    return len(rows)

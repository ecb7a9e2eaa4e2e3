"""Keep SQLite's query-planner statistics in step with the data.

PostgreSQL's autovacuum re-analyses tables as they grow. SQLite has only the statistics of
its last ANALYZE: on a new install that is migration 0003's, taken on empty tables. As the
facts grow from none to millions of rows, the planner would go on planning for empty
tables and could pick the wrong index for `/llm-cost`'s scans. Every writer of facts (a
collection, a billing-file or Athena import) therefore calls `refresh_after_writing`. It
re-analyses any table whose size has changed
tenfold since its statistics were taken. `analysis_limit` makes it sample each index
instead of reading it whole, so a run takes milliseconds even on millions of rows.

SQLite's own `PRAGMA optimize` cannot be used for this. Before SQLite 3.46 it only
considers tables that queries on the same connection have used. Python 3.11 ships an
older SQLite, and a collection's connection runs no such queries.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

# The tables whose size drives the plans of the answers: facts and the registry.
WATCHED_TABLES = ("cost_facts", "usage_facts", "gpu_facts", "upstream_facts", "workloads")
GROWTH_FACTOR = 10
# Rows ANALYZE samples per index (SQLite's documented range: 100-1000 for speed).
ANALYSIS_LIMIT = 1000


def refresh_planner_statistics(
    engine: Engine, tables: tuple[str, ...] = WATCHED_TABLES
) -> list[str]:
    """ANALYZE each of `tables` whose statistics are missing or are off by
    `GROWTH_FACTOR` from its size. Returns the tables it analysed. PostgreSQL: nothing to
    do (autovacuum)."""
    if engine.dialect.name != "sqlite":
        return []
    analysed: list[str] = []
    with engine.begin() as connection:
        known = _rows_when_analysed(connection)
        connection.exec_driver_sql(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}")
        for table in tables:
            # every table here has an integer primary key: max(rowid) is one index probe
            # (it over-counts after deletes, which only makes a refresh come sooner)
            rows = connection.exec_driver_sql(f'SELECT max(rowid) FROM "{table}"').scalar() or 0
            before = known.get(table)
            if before is None and rows == 0:
                continue  # empty and never analysed: no statistics is right for it
            if before is None or rows > before * GROWTH_FACTOR or rows * GROWTH_FACTOR < before:
                connection.exec_driver_sql(f'ANALYZE "{table}"')
                analysed.append(table)
    return analysed


def refresh_after_writing(session_factory: sessionmaker[Session]) -> None:
    """`refresh_planner_statistics` once a writer of facts has committed: a collection, a
    billing-file or Athena import. A busy database is only logged: the next write retries."""
    with session_factory() as session:
        bind = session.get_bind()
    # A factory bound to a Connection (an outer transaction) would have ANALYZE run in a
    # nested `begin()` on it, which fails: use a connection of its own from the engine.
    engine = bind if isinstance(bind, Engine) else bind.engine
    try:
        analysed = refresh_planner_statistics(engine)
    except OperationalError as error:
        log.warning("planner statistics not refreshed: %s", error)
        return
    if analysed:
        log.info("planner statistics refreshed for %s", ", ".join(analysed))


def _rows_when_analysed(connection: Connection) -> dict[str, int]:
    """{table: its row count at its last ANALYZE}, from sqlite_stat1 (absent: never)."""
    exists = connection.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
    ).first()
    if exists is None:
        return {}
    rows: dict[str, int] = {}
    for table, stat in connection.exec_driver_sql("SELECT tbl, stat FROM sqlite_stat1"):
        # `stat` starts with the table's (estimated) row count
        count = int(str(stat).split()[0])
        rows[table] = max(rows.get(table, 0), count)
    return rows


__all__ = [
    "ANALYSIS_LIMIT",
    "GROWTH_FACTOR",
    "WATCHED_TABLES",
    "refresh_after_writing",
    "refresh_planner_statistics",
]

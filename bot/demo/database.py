"""The demo's database: migrated and emptied at the start of every run.

Every run starts from the same empty state, so it prints the same thing however often it
runs. Emptying a database is only safe when it holds demo data: a database with tables that
are not llmgov's, or with a registry of another organisation, is refused before anything is
written (someone may have passed their real `DATABASE_URL`).
"""

from __future__ import annotations

from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import Connection, Engine

from llmgov import models  # noqa: F401 - registers every table on Base.metadata
from llmgov.models.base import Base, make_engine
from llmgov.models.errors import BadInput
from llmgov.models.migrate import upgrade
from llmgov.models.registry import OrganisationProfile, Workload

DEMO_ORGANISATION = "Northwind Travel"  # `organisation.name` in bot/demo/registry.yaml
ALEMBIC_TABLE = "alembic_version"


def prepare_database(database_url: str) -> Engine:
    """An engine on `database_url`, migrated to the latest schema and emptied (demo data only)."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            refuse_foreign_data(connection, engine.url.render_as_string(hide_password=True))
        upgrade(engine)
        with engine.begin() as connection:
            empty_tables(connection)
    except BaseException:
        engine.dispose()
        raise
    return engine


def refuse_foreign_data(connection: Connection, shown_url: str) -> None:
    """BadInput unless the database is empty, or an llmgov database with no registry or the
    demo's registry."""
    tables = set(inspect(connection).get_table_names())
    if not tables:
        return
    ours = {table.name for table in Base.metadata.sorted_tables} | {ALEMBIC_TABLE}
    foreign = sorted(tables - ours)
    advice = (
        "`llmgov demo` empties its database on every run, so it leaves this one alone. "
        "Give it a database of its own, e.g. --database-url sqlite:///llmgov-demo.db"
    )
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise BadInput(f"{shown_url} holds tables that are not llmgov's ({shown}). {advice}")
    if Workload.__tablename__ not in tables:
        return
    workloads = connection.scalar(select(func.count()).select_from(Workload))
    if not workloads:
        return
    extra = connection.scalar(select(OrganisationProfile.extra).where(OrganisationProfile.id == 1))
    name = (extra or {}).get("name") if isinstance(extra, dict) else None
    if name != DEMO_ORGANISATION:
        who = f"organisation {name!r}" if name else "an organisation without a name"
        raise BadInput(
            f"{shown_url} holds a registry of {workloads} workloads of {who}, not the demo's "
            f"({DEMO_ORGANISATION}). {advice}"
        )


def empty_tables(connection: Connection) -> None:
    """Delete every row of every llmgov table; ids start again from 1 (the output shows them)."""
    tables = list(Base.metadata.sorted_tables)
    if connection.dialect.name == "postgresql":
        names = ", ".join(connection.dialect.identifier_preparer.quote(t.name) for t in tables)
        connection.execute(text(f"TRUNCATE TABLE {names} RESTART IDENTITY CASCADE"))
        return
    # SQLite (no table uses AUTOINCREMENT) hands out max(id) + 1 again: 1 on an empty table
    for table in reversed(tables):  # children before parents
        connection.execute(table.delete())


__all__ = ["DEMO_ORGANISATION", "empty_tables", "prepare_database", "refuse_foreign_data"]

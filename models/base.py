"""Declarative base, engine and session factory shared by every model module."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, DateTime, MetaData, Numeric, create_engine, event, inspect
from sqlalchemy.engine import CursorResult, Dialect, Engine
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.base import Executable
from sqlalchemy.types import TypeDecorator

DEFAULT_DATABASE_URL = "sqlite:///llmgov.db"

# Stable constraint names so Alembic migrations are reproducible on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops tzinfo otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# Money: exact decimals at the edges (storage, messages); floats only inside the numpy core.
Money = Numeric(20, 8, asdecimal=True)
# The largest amount a Money column holds is under 10**12 (20 digits, 8 of them decimals);
# every write path (the registry file, Slack, the breaker) refuses amounts at or above it.
MAX_MONEY = Decimal(10) ** 12


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UTCDateTime(),
        Decimal: Money,
        dict: JSON,
        dict[str, Any]: JSON,
        list: JSON,
    }


def utcnow() -> datetime:
    return datetime.now(UTC)


def database_url() -> str:
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    url = url or database_url()
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
    engine = create_engine(url, future=True, **kwargs)
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(
            dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry
        ) -> None:
            # pysqlite begins a transaction at the first write, so reads see fresh commits
            # as on PostgreSQL's READ COMMITTED. The price: SAVEPOINTs (begin_nested) do not
            # nest on SQLite, so the code keeps each unit of work in one flat transaction.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            if ":memory:" not in url and url not in ("sqlite://", "sqlite:///"):
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    return engine


def plain_rows(session: Session, statement: Executable) -> CursorResult[Any]:
    """The rows of a column query, run as Core on the session's connection: on 10,000-row
    results (`/llm-cost all`, `/llm-owner list all`) the ORM's per-row processing costs
    about as much as the query. Pending changes are flushed first, as autoflush would."""
    if session.autoflush:
        session.flush()
    return session.connection().execute(statement)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, future=True)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back everything on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


class SchemaNotReady(RuntimeError):
    """The database has not been migrated to the schema this code expects."""


def require_schema(engine: Engine) -> None:
    """Fail with an actionable message when the database is not migrated."""
    from llmgov.models.migrate import current_revision, head_revision

    url = engine.url.render_as_string(hide_password=True)
    database = engine.url.database or ""
    on_disk = engine.url.get_backend_name() == "sqlite" and database not in ("", ":memory:")
    if on_disk and not os.path.exists(database):  # connecting would leave an empty file
        raise SchemaNotReady(
            f"The database {url} does not exist yet. Run `llmgov db upgrade` "
            "(with the same DATABASE_URL) to create it, and try again."
        )
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        state = "not migrated" if current is None else f"at revision {current}, not {head}"
        raise SchemaNotReady(
            f"The database {url} is {state}. Run `llmgov db upgrade` "
            "(with the same DATABASE_URL) and try again."
        )


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())

"""Shared fixtures: a real database (SQLite always; PostgreSQL when TEST_DATABASE_URL is set).

On PostgreSQL each test session (and each xdist worker) gets a schema of its own, so runs
never see each other; tables are created once and emptied after every test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

import llmgov.models.migrate
from llmgov.models.base import Base, make_engine, make_session_factory

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def _postgres_url_with_schema(base_url: str, schema: str) -> str:
    separator = "&" if "?" in base_url else "?"
    return f"{base_url}{separator}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> Iterator[str]:
    """A database URL for this test session: a fresh PostgreSQL schema, or a SQLite file."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        path = tmp_path_factory.mktemp("db") / "llmgov-test.db"
        yield f"sqlite:///{path}"
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    schema = f"llmgov_test_{worker}_{uuid.uuid4().hex[:8]}"
    admin = make_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _postgres_url_with_schema(base, schema)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def _schema_engine(database_url) -> Iterator[Engine]:
    engine = make_engine(database_url)
    llmgov.models.migrate.upgrade(engine)  # the real migrations, on both backends
    yield engine
    engine.dispose()


@pytest.fixture
def engine(_schema_engine, database_url, monkeypatch) -> Iterator[Engine]:
    """A migrated, empty database; DATABASE_URL points at it for code that reads it."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    yield _schema_engine
    with _schema_engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


@pytest.fixture
def session_factory(engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def session(session_factory) -> Iterator[Session]:
    with session_factory() as db_session:
        yield db_session


@pytest.fixture
def slack_mock():
    """A mock Slack Web API on an ephemeral port; fails the test on any contract violation."""
    from tests.support.slack_mock import MockSlack

    mock = MockSlack().start()
    yield mock
    mock.stop()
    assert mock.state.contract_violations == [], mock.state.contract_violations


@pytest.fixture
def answers():
    """The app's answer pool: `answers.wait_idle()` waits for every answer sent so far."""
    from llmgov.bot.answers import AnswerPool

    pool = AnswerPool()
    yield pool
    pool.shutdown(wait=True)

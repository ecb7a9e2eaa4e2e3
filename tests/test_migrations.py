"""Migrations: they build exactly the models' schema, and upgrade/downgrade keep data."""

from __future__ import annotations

import os
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from llmgov.models import migrate
from llmgov.models.base import Base, SchemaNotReady, make_engine, require_schema


@pytest.fixture
def empty_database(tmp_path):
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        yield make_engine(f"sqlite:///{tmp_path / 'migrate.db'}")
        return
    from tests.conftest import _postgres_url_with_schema

    schema = f"llmgov_mig_{uuid.uuid4().hex[:8]}"
    admin = make_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(_postgres_url_with_schema(base, schema))
    yield engine
    engine.dispose()
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def test_head_matches_the_models(empty_database):
    migrate.upgrade(empty_database)
    with empty_database.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == [], "models changed without a migration: " + repr(differences)


def test_unmigrated_database_says_what_to_run(empty_database):
    with pytest.raises(SchemaNotReady, match="llmgov db upgrade"):
        require_schema(empty_database)
    migrate.upgrade(empty_database)
    require_schema(empty_database)  # no error once at head


def test_upgrade_and_downgrade_preserve_registry_data(empty_database):
    migrate.upgrade(empty_database, "0001")
    with empty_database.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO teams (slug, name, channel_id, created_at) "
                "VALUES ('search', 'Search', 'C0SEARCH01', CURRENT_TIMESTAMP)"
            )
        )
    migrate.upgrade(empty_database, "head")
    with empty_database.connect() as connection:
        assert connection.execute(text("SELECT name FROM teams")).scalar_one() == "Search"
    migrate.downgrade(empty_database, "0001")
    with empty_database.connect() as connection:
        assert connection.execute(text("SELECT slug FROM teams")).scalar_one() == "search"
    assert migrate.current_revision(empty_database) == "0001"
    migrate.upgrade(empty_database, "head")
    assert migrate.current_revision(empty_database) == migrate.head_revision()

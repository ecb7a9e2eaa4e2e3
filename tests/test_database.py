"""The engine factory: a unit of work commits whole or not at all, on every backend."""

import pytest
from sqlalchemy import select

from llmgov.models.base import make_session_factory, transaction
from llmgov.models.registry import Team


def test_transaction_rolls_back_everything_on_error(engine):
    factory = make_session_factory(engine)
    with pytest.raises(RuntimeError), transaction(factory) as session:
        session.add(Team(slug="a", name="A"))
        session.flush()
        session.add(Team(slug="b", name="B"))
        session.flush()
        raise RuntimeError("boom")
    with factory() as session:
        assert session.scalars(select(Team.slug)).all() == []


def test_reads_see_rows_committed_by_another_session(engine):
    factory = make_session_factory(engine)
    with factory() as reader:
        assert reader.scalars(select(Team.slug)).all() == []
        with transaction(factory) as writer:
            writer.add(Team(slug="new", name="New"))
        assert reader.scalars(select(Team.slug)).all() == ["new"]

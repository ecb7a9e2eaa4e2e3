"""One write path for workloads: a change made in the registry file and the same change made
from Slack share one limit, one audit vocabulary and one payload shape, so a workload's
history reads the same whoever made the change."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from llmgov.bot.cli import main
from llmgov.commands import owner
from llmgov.models import migrate
from llmgov.models.base import make_engine
from tests.registry.support import BASE_REGISTRY, audit_events, import_text

ADMINS = frozenset({"U0ADMIN01"})


def _history_lines(capsys, slug: str) -> list[str]:
    assert main(["ask", f"/llm-owner show {slug}"]) == 0
    return [line for line in capsys.readouterr().out.splitlines() if "budget.set" in line]


def test_a_budget_change_reads_the_same_from_a_file_and_from_slack(
    base, session_factory, engine, capsys
):
    import_text(
        session_factory,
        BASE_REGISTRY.replace("budget: {monthly: 4000}", "budget: {monthly: 4500}"),
        filename="b.yaml",
    )
    by_slack = owner.answer(session_factory, "budget search-summaries 5000", "U0ANA0001", ADMINS)
    assert isinstance(by_slack, owner.ChangeAnswer) and by_slack.change.applied

    lines = _history_lines(capsys, "search-summaries")
    # newest first: Slack's change, then the file's, each with its before and after
    assert len(lines) == 2
    assert lines[0].endswith("budget.set: budget $4,500 → $5,000")
    assert lines[1].endswith("budget.set: budget $4,000 → $4,500")
    assert "registry:b.yaml" in lines[1]


def test_one_budget_rule_for_the_file_and_for_slack(base, session_factory):
    zero = BASE_REGISTRY.replace("budget: {monthly: 4000}", "budget: {monthly: 0}")
    with pytest.raises(Exception) as from_file:
        import_text(session_factory, zero)
    answer = owner.answer(session_factory, "budget search-summaries 0", "U0ANA0001", ADMINS)
    rule = "must be a positive amount, not 0; e.g. 4000 (leave it out for no budget)"
    assert rule in str(from_file.value)
    assert isinstance(answer, owner.ErrorAnswer) and rule in answer.message

    huge = BASE_REGISTRY.replace("budget: {monthly: 4000}", "budget: {monthly: 1000000000000}")
    with pytest.raises(Exception) as too_large:
        import_text(session_factory, huge)
    assert "the limit is under 1,000,000,000,000" in str(too_large.value)


def test_backup_owner_changes_use_slacks_action_name(base, session_factory):
    import_text(
        session_factory,
        BASE_REGISTRY.replace("backup_owner: bo@example.com", "backup_owner: U0BOB0002"),
    )
    by_slack = owner.answer(
        session_factory, "backup search-summaries <@U0CAT0003>", "U0ANA0001", ADMINS
    )
    events = [e for e in audit_events(session_factory) if e.action.startswith("backup_owner")]
    assert isinstance(by_slack, owner.ChangeAnswer) and by_slack.change.applied
    assert [e.action for e in events] == ["backup_owner.set", "backup_owner.set"]
    assert events[0].before == {"backup_owner": "bo@example.com"}
    assert events[0].after == {"backup_owner": "U0BOB0002"}


@pytest.fixture
def sqlite_engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    yield engine
    engine.dispose()


def test_the_migration_rewrites_earlier_file_rows_into_the_one_shape(sqlite_engine):
    migrate.upgrade(sqlite_engine, "0003")
    old_rows = [
        ("registry:a.yaml", "backup_owner.assign", '"bo@example.com"', '"U0ANA0001"'),
        ("registry:a.yaml", "owner.assign", '"U0ANA0001"', '"U0BOB0002"'),
        (
            "registry:a.yaml",
            "budget.set",
            '{"monthly": "200", "currency": "USD"}',
            '{"monthly": "300", "currency": "USD"}',
        ),
        ("registry:a.yaml", "status.set", '"experiment"', '"retired"'),
        # a row Slack wrote: already in the one shape, left alone
        ("U0ANA0001", "owner.assign", '{"owner": null}', '{"owner": "U0ANA0001"}'),
    ]
    with sqlite_engine.begin() as connection:
        for actor, action, before, after in old_rows:
            connection.execute(
                text(
                    "INSERT INTO audit_events (at, actor, action, entity, entity_key, before,"
                    " after, outcome) VALUES (CURRENT_TIMESTAMP, :actor, :action, 'workload',"
                    " 'w', :before, :after, 'applied')"
                ),
                {"actor": actor, "action": action, "before": before, "after": after},
            )
    migrate.upgrade(sqlite_engine)
    with sqlite_engine.connect() as connection:
        rows = connection.execute(
            text("SELECT action, before, after FROM audit_events ORDER BY id")
        ).all()
    import json

    assert [(a, json.loads(b), json.loads(c)) for a, b, c in rows] == [
        ("backup_owner.set", {"backup_owner": "bo@example.com"}, {"backup_owner": "U0ANA0001"}),
        ("owner.assign", {"owner": "U0ANA0001"}, {"owner": "U0BOB0002"}),
        (
            "budget.set",
            {"budget_monthly": "200", "currency": "USD"},
            {"budget_monthly": "300", "currency": "USD"},
        ),
        ("workload.retire", {"status": "experiment"}, {"status": "retired"}),
        ("owner.assign", {"owner": None}, {"owner": "U0ANA0001"}),
    ]

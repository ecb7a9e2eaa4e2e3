"""The registry queries behind `llmgov demo` and `/llm-owner list|gaps`."""

from __future__ import annotations

from decimal import Decimal

import pytest

from llmgov.governance.registry_view import (
    Gap,
    count_gaps,
    group_by_team,
    list_gaps,
    list_workloads,
)
from llmgov.models.base import transaction
from llmgov.models.errors import BadInput
from tests.registry.support import import_text

REGISTRY = """\
teams:
  - {slug: search, name: Search, channel: C0SEARCH01}
  - {slug: support, name: Support}
people:
  - {slack_id: U0ANA0001, email: ana@example.com, name: Ana}
  - {slack_id: U0OLD0002, email: old@example.com, name: Old Timer, active: false}
workloads:
  - {slug: complete, team: search, owner: U0ANA0001, budget: {monthly: 100}, exit_strategy: "Switch models"}
  - {slug: no-budget, team: search, owner: ana@example.com, exit_strategy: "Switch models"}
  - {slug: no-exit, team: support, owner: U0ANA0001, backup_owner: U0OLD0002, budget: {monthly: 5}}
  - {slug: orphan, team: support, owner: U0OLD0002, budget: {monthly: 5}, exit_strategy: "x"}
  - {slug: unowned, team: support, budget: {monthly: 5}, exit_strategy: "x"}
  - {slug: found, status: discovered, platform: self_hosted}
  - {slug: gone, team: search, status: retired}
"""


@pytest.fixture
def registry(session_factory):
    import_text(session_factory, REGISTRY)


def test_gaps_of_each_workload(registry, session_factory):
    with transaction(session_factory) as session:
        views = {view.slug: view for view in list_workloads(session, include_retired=True)}
    assert {slug: view.gaps for slug, view in views.items()} == {
        "complete": (),
        "no-budget": (Gap.MISSING_BUDGET,),
        "no-exit": (Gap.MISSING_EXIT_STRATEGY,),
        "orphan": (Gap.OWNER_INACTIVE,),
        "unowned": (Gap.UNOWNED,),
        # discovered: an owner first, then a budget and an exit strategy can be asked for
        "found": (Gap.DISCOVERED, Gap.UNOWNED),
        "gone": (),  # retired workloads have no gaps
    }
    assert views["complete"].budget_monthly == Decimal(100)
    assert (
        views["complete"].team_name == "Search" and views["complete"].team_channel == "C0SEARCH01"
    )
    assert views["orphan"].owner.label == "Old Timer" and views["orphan"].owner.active is False
    assert views["no-budget"].owner.ref == "U0ANA0001"


def test_the_column_listing_equals_the_view_of_each_orm_workload(registry, session_factory):
    """`list_workloads` reads plain columns; `view_of` (the `/llm-owner show` path) reads ORM
    workloads. Both must say the same of every workload, people and gaps included."""
    from sqlalchemy import select

    from llmgov.governance.registry_view import view_of
    from llmgov.models.registry import Workload

    with transaction(session_factory) as session:
        listed = {view.slug: view for view in list_workloads(session, include_retired=True)}
        orm = {w.slug: view_of(w) for w in session.scalars(select(Workload))}
    assert listed == orm
    assert listed["no-exit"].backup_owner.label == "Old Timer"


def test_list_orders_by_team_then_slug_and_hides_retired(registry, session_factory):
    with transaction(session_factory) as session:
        slugs = [view.slug for view in list_workloads(session)]
    assert slugs == ["complete", "no-budget", "no-exit", "orphan", "unowned", "found"]


def test_list_filters_by_team_and_by_owner(registry, session_factory):
    with transaction(session_factory) as session:
        assert [v.slug for v in list_workloads(session, team="support")] == [
            "no-exit",
            "orphan",
            "unowned",
        ]
        # owner or backup owner, by Slack id, mention or email
        assert [v.slug for v in list_workloads(session, owner="<@U0OLD0002|old>")] == [
            "no-exit",
            "orphan",
        ]
        assert [v.slug for v in list_workloads(session, owner="ana@example.com")] == [
            "complete",
            "no-budget",
            "no-exit",
        ]
        assert list_workloads(session, owner="nobody@example.com") == []
        with pytest.raises(BadInput, match=r"unknown team 'serch'; teams: search, support"):
            list_workloads(session, team="serch")
        with pytest.raises(BadInput, match="neither a Slack user id"):
            list_workloads(session, owner="Ana")


def test_gaps_worst_first_and_counted(registry, session_factory):
    with transaction(session_factory) as session:
        views = list_gaps(session)
        support = list_gaps(session, team="support")
    assert [view.slug for view in views] == ["found", "unowned", "orphan", "no-budget", "no-exit"]
    assert [view.slug for view in support] == ["unowned", "orphan", "no-exit"]
    assert count_gaps(views) == {
        Gap.DISCOVERED: 1,
        Gap.UNOWNED: 2,
        Gap.OWNER_INACTIVE: 1,
        Gap.MISSING_BUDGET: 1,
        Gap.MISSING_EXIT_STRATEGY: 1,
    }
    assert [(team, [v.slug for v in members]) for team, members in group_by_team(views)] == [
        (None, ["found"]),
        ("support", ["unowned", "orphan", "no-exit"]),
        ("search", ["no-budget"]),
    ]

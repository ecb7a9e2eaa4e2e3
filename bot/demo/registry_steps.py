"""The demo's first steps: load the bundled registry, print its workloads and their gaps."""

from __future__ import annotations

from decimal import Decimal

from llmgov.bot.demo import demo_file
from llmgov.bot.demo.context import DemoRun, table_lines
from llmgov.governance.registry_file import import_registry, parse_registry
from llmgov.governance.registry_view import (
    GAP_LABELS,
    PersonView,
    WorkloadView,
    count_gaps,
    group_by_team,
    list_gaps,
    list_workloads,
)
from llmgov.models.base import transaction

DEMO_REGISTRY = "registry.yaml"


def load_registry(demo: DemoRun) -> None:
    """Import the bundled registry of Northwind Travel into the (empty) demo database."""
    text = demo_file(DEMO_REGISTRY).read_text(encoding="utf-8")
    registry = parse_registry(text, DEMO_REGISTRY)
    with transaction(demo.session_factory) as session:
        plan = import_registry(session, registry)
    counts = ", ".join(
        f"{sum(1 for change in plan.created if change.entity == entity)} {plural}"
        for entity, plural in (("team", "teams"), ("person", "people"), ("workload", "workloads"))
    )
    demo.say(f"Loaded the demo registry ({DEMO_REGISTRY}): created {counts}.")


def show_registry(demo: DemoRun) -> None:
    """Every workload, grouped by team."""
    with transaction(demo.session_factory) as session:
        views = list_workloads(session, include_retired=True)
    teams = {view.team for view in views if view.team}
    demo.heading(f"Registry: {len(views)} workloads in {len(teams)} teams")
    columns = ("SLUG", "PLATFORM", "OWNER", "BUDGET/MONTH", "STATUS")
    rows = [_registry_row(view) for view in views]
    # one width for every team's table, so the columns line up down the whole section
    lines = dict(zip((view.slug for view in views), table_lines(columns, rows)[1:], strict=True))
    header = table_lines(columns, rows)[0]
    for team, members in group_by_team(views):
        first = members[0]
        title = f"{first.team_name} ({team})" if team else "No team"
        if first.team_channel:
            title += f"  #{first.team_channel}"
        demo.say()
        demo.say(title)
        demo.say("  " + header)
        for view in members:
            demo.say("  " + lines[view.slug])


def show_gaps(demo: DemoRun) -> None:
    """The ownership gaps the registry itself shows, before any spend is known."""
    with transaction(demo.session_factory) as session:
        views = list_gaps(session)
    demo.heading(f"Ownership gaps: {len(views)} workloads need attention")
    counts = count_gaps(views)
    demo.say(", ".join(f"{GAP_LABELS[gap]}: {count}" for gap, count in counts.items()))
    demo.say()
    width = max((len(view.slug) for view in views), default=0)
    for view in views:
        team = view.team or "no team"
        owner = f", owner {owner_label(view.owner)}" if view.owner else ""
        gaps = "; ".join(GAP_LABELS[gap] for gap in view.gaps)
        demo.say(f"  {view.slug:<{width}}  {team}{owner}: {gaps}")


def _registry_row(view: WorkloadView) -> tuple[str, str, str, str, str]:
    return (
        view.slug,
        view.platform,
        owner_label(view.owner),
        _budget(view.budget_monthly, view.currency),
        view.status,
    )


def owner_label(person: PersonView | None) -> str:
    if person is None:
        return "—"
    return person.label if person.active else f"{person.label} (left)"


def _budget(amount: Decimal | None, currency: str) -> str:
    if amount is None:
        return "—"
    places = 0 if amount == amount.to_integral_value() else 2
    return f"{amount:,.{places}f} {currency}"


__all__ = ["DEMO_REGISTRY", "load_registry", "owner_label", "show_gaps", "show_registry"]

"""`llmgov demo`: the whole loop on an embedded default (SQLite + bundled data), no Slack, no AWS.

The demo is a sequence of steps, each a function of the `DemoRun`; later issues extend the
loop by adding steps to `STEPS` (collect the bundled facts, run the checks, assemble the
digest...). Every step is idempotent, so running the demo twice works and changes nothing
the second time.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TextIO

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.demo import demo_file
from governance.registry_file import import_registry, parse_registry
from governance.registry_view import (
    GAP_LABELS,
    PersonView,
    WorkloadView,
    count_gaps,
    group_by_team,
    list_gaps,
    list_workloads,
)
from models.base import make_engine, make_session_factory, transaction
from models.migrate import current_revision, upgrade

DEFAULT_DEMO_DATABASE_URL = "sqlite:///llmgov-demo.db"  # in the current directory
DEMO_REGISTRY = "registry.yaml"


@dataclass
class DemoRun:
    """What every step gets: the demo database and where to print."""

    engine: Engine
    session_factory: sessionmaker[Session]
    out: TextIO

    def say(self, text: str = "") -> None:
        print(text, file=self.out)

    def heading(self, text: str) -> None:
        self.say()
        self.say(text)
        self.say("=" * len(text))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the loop on a local SQLite database with bundled demo data (no Slack, no AWS)",
        description=(
            "Create and migrate a demo database, load the bundled registry of a fictional "
            "company and print its workloads and ownership gaps. Safe to run again."
        ),
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DEMO_DATABASE_URL,
        metavar="URL",
        help=f"the demo database (default {DEFAULT_DEMO_DATABASE_URL}, in the current directory)",
    )
    parser.set_defaults(handler=lambda args: run(args.database_url))


def run(database_url: str = DEFAULT_DEMO_DATABASE_URL, out: TextIO | None = None) -> int:
    demo = open_database(database_url, out or sys.stdout)
    try:
        for step in STEPS:
            step(demo)
    finally:
        demo.engine.dispose()
    return 0


# -- the steps ---------------------------------------------------------------------------


def open_database(database_url: str, out: TextIO) -> DemoRun:
    """Step 0: create the database if needed and migrate it to the latest schema."""
    engine = make_engine(database_url)
    upgrade(engine)
    demo = DemoRun(engine=engine, session_factory=make_session_factory(engine), out=out)
    url = engine.url.render_as_string(hide_password=True)
    demo.say(f"llmgov demo: database {url} (schema revision {current_revision(engine)})")
    return demo


def load_registry(demo: DemoRun) -> None:
    """Step 1: import the bundled registry of Northwind Travel (a no-op the second time)."""
    text = demo_file(DEMO_REGISTRY).read_text(encoding="utf-8")
    registry = parse_registry(text, DEMO_REGISTRY)
    with transaction(demo.session_factory) as session:
        plan = import_registry(session, registry)
    if plan.changes:
        counts = ", ".join(
            f"{sum(1 for change in plan.created if change.entity == entity)} {plural}"
            for entity, plural in (
                ("team", "teams"),
                ("person", "people"),
                ("workload", "workloads"),
            )
        )
        demo.say(f"Loaded the demo registry ({DEMO_REGISTRY}): created {counts}.")
    else:
        demo.say(f"The demo registry ({DEMO_REGISTRY}) is already loaded: nothing changed.")


def show_registry(demo: DemoRun) -> None:
    """Step 2: every workload, grouped by team."""
    with transaction(demo.session_factory) as session:
        views = list_workloads(session, include_retired=True)
    teams = {view.team for view in views if view.team}
    demo.heading(f"Registry: {len(views)} workloads in {len(teams)} teams")
    columns = ("SLUG", "PLATFORM", "OWNER", "BUDGET/MONTH", "STATUS")
    rows = {view.slug: _registry_row(view) for view in views}
    widths = [max([len(columns[i]), *(len(row[i]) for row in rows.values())]) for i in range(5)]
    for team, members in group_by_team(views):
        first = members[0]
        title = f"{first.team_name} ({team})" if team else "No team"
        if first.team_channel:
            title += f"  #{first.team_channel}"
        demo.say()
        demo.say(title)
        demo.say("  " + _line(columns, widths))
        for view in members:
            demo.say("  " + _line(rows[view.slug], widths))


def show_gaps(demo: DemoRun) -> None:
    """Step 3: the ownership gaps leadership would review, worst first."""
    with transaction(demo.session_factory) as session:
        views = list_gaps(session)
    demo.heading(f"Ownership gaps: {len(views)} workloads need attention")
    counts = count_gaps(views)
    demo.say(", ".join(f"{GAP_LABELS[gap]}: {count}" for gap, count in counts.items()))
    demo.say()
    width = max((len(view.slug) for view in views), default=0)
    for view in views:
        team = view.team or "no team"
        owner = f", owner {_owner(view.owner)}" if view.owner else ""
        gaps = "; ".join(GAP_LABELS[gap] for gap in view.gaps)
        demo.say(f"  {view.slug:<{width}}  {team}{owner}: {gaps}")


def show_next_steps(demo: DemoRun) -> None:
    """Last step: where to go from here."""
    url = demo.engine.url.render_as_string(hide_password=True)
    demo.say()
    demo.say("Next:")
    demo.say(f"  DATABASE_URL={url} llmgov registry export   # the registry as a YAML file")
    demo.say("  In Slack, anyone may claim an unowned workload: /llm-owner claim SLUG")


# The demo, in order; later issues insert their steps (collect, check, digest) before the last.
STEPS: list[Callable[[DemoRun], None]] = [load_registry, show_registry, show_gaps, show_next_steps]


# -- formatting --------------------------------------------------------------------------


def _registry_row(view: WorkloadView) -> tuple[str, str, str, str, str]:
    return (
        view.slug,
        view.platform,
        _owner(view.owner),
        _money(view.budget_monthly, view.currency),
        view.status,
    )


def _owner(person: PersonView | None) -> str:
    if person is None:
        return "—"
    return person.label if person.active else f"{person.label} (left)"


def _money(amount: Decimal | None, currency: str) -> str:
    if amount is None:
        return "—"
    return (
        f"{amount:,.0f} {currency}"
        if amount == amount.to_integral_value()
        else f"{amount:,.2f} {currency}"
    )


def _line(cells: tuple[str, ...], widths: list[int]) -> str:
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

"""`llmgov demo`, step by step: the whole loop on the embedded default (SQLite and the
bundled sample data), no Slack, no AWS.

The demo is a list of steps (`STEPS`), each a function of the `DemoRun`. It starts from an
empty database every time and runs as of a fixed day (the sample's last, unless `--as-of`
says otherwise), so two runs print the same thing, whatever today's date is.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TextIO

from llmgov.bot.demo.context import DemoRun, day_text
from llmgov.bot.demo.database import prepare_database
from llmgov.bot.demo.loop import (
    DECIDE_WORKLOAD,
    DIGEST_OWNER,
    collect_sample,
    show_checks,
    show_collected,
    show_commands,
    show_digest,
    show_gap_review,
)
from llmgov.bot.demo.registry_steps import load_registry, show_gaps, show_registry
from llmgov.collectors.sample_data import SAMPLE_END
from llmgov.models.base import make_session_factory
from llmgov.models.errors import BadInput
from llmgov.models.migrate import current_revision

EARLIEST_AS_OF = date(2020, 1, 1)
LATEST_AS_OF = date(2099, 12, 31)


def show_next_steps(demo: DemoRun) -> None:
    """Where to go from here, on the database the demo leaves behind."""
    as_of = demo.as_of.isoformat()
    month = demo.as_of.strftime("%Y-%m")
    demo.heading("Next: the demo database stays; try the commands on it")
    lines = [
        (f"export DATABASE_URL={demo.database_url}", ""),
        (f'llmgov ask "/llm-cost team:support {month}"', "# any slash command, as Slack runs it"),
        (f"llmgov cost all 30d --as-of {as_of} --format json", "# /llm-cost for scripts"),
        (f"llmgov decide search-summaries --as-of {as_of}", "# another /llm-decide"),
        (f"llmgov check --dry-run --as-of {as_of}", "# the alerts above, again"),
        (f"llmgov digest --dry-run --as-of {as_of} --owner {DIGEST_OWNER}", "# one owner's digest"),
        (f"llmgov gaps --dry-run --as-of {as_of}", "# the ownership-gap review"),
        ("llmgov registry export", "# the registry as code (YAML)"),
        ("llmgov serve", "# the Slack app: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET first"),
    ]
    width = max(len(command) for command, _ in lines)
    for command, comment in lines:
        demo.say(f"  {command:<{width}}  {comment}".rstrip())
    demo.say()
    demo.say(
        f"The demo pretends today is {day_text(demo.as_of)}, the sample's last day; "
        '`llmgov ask` answers as of today, hence the month ("'
        f'{month}") rather than "30d".'
    )
    demo.say(f"In Slack: /llm-cost all · /llm-decide {DECIDE_WORKLOAD} · /llm-owner claim SLUG")


# The demo, in order.
STEPS: list[Callable[[DemoRun], None]] = [
    load_registry,
    show_registry,
    show_gaps,
    collect_sample,
    show_collected,
    show_checks,
    show_digest,
    show_gap_review,
    show_commands,
    show_next_steps,
]


def run_demo(database_url: str, out: TextIO, as_of: date | None = None) -> int:
    """Run every step on `database_url` (emptied first: demo data only) as of `as_of`."""
    as_of = as_of or SAMPLE_END
    if not EARLIEST_AS_OF <= as_of <= LATEST_AS_OF:
        raise BadInput(
            f"--as-of {as_of} is out of range: give a day between {EARLIEST_AS_OF} and "
            f"{LATEST_AS_OF}, e.g. {SAMPLE_END} (the bundled sample's last day)"
        )
    engine = prepare_database(database_url)
    try:
        demo = DemoRun(
            engine=engine,
            session_factory=make_session_factory(engine),
            out=out,
            as_of=as_of,
        )
        demo.say(
            f"llmgov demo: database {demo.database_url} (schema revision "
            f"{current_revision(engine)}, emptied for a fresh start), as of {day_text(as_of)}"
        )
        for step in STEPS:
            step(demo)
    finally:
        engine.dispose()
    return 0


__all__ = ["STEPS", "run_demo", "show_next_steps"]

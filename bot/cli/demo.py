"""`llmgov demo [--database-url URL] [--as-of DATE]`: the whole loop on an embedded default
(SQLite and the bundled sample data), no Slack, no AWS.

The steps live in `bot.demo.run` (imported when the demo runs, so `llmgov --help` and the
other subcommands do not load numpy, the checks and the collectors).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from typing import TextIO

from llmgov.bot.cli.common import parse_date

DEFAULT_DEMO_DATABASE_URL = "sqlite:///llmgov-demo.db"  # in the current directory


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole loop on a local SQLite database with bundled sample data "
        "(no Slack, no AWS)",
        description=(
            "Load the bundled registry of a fictional company, import the bundled sample bill "
            "and usage, run the checks, and print the alerts, one owner's digest, the "
            "ownership-gap review and the /llm-cost and /llm-decide answers. Nothing is sent. "
            "The demo database is emptied at the start of every run (it refuses a database "
            "holding anything but demo data) and stays afterwards for you to explore."
        ),
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DEMO_DATABASE_URL,
        metavar="URL",
        help=f"the demo database (default {DEFAULT_DEMO_DATABASE_URL}, in the current directory)",
    )
    parser.add_argument(
        "--as-of",
        type=parse_date,
        default=None,
        metavar="DATE",
        help="the day the demo runs as of (default: 2026-11-26, the bundled sample's last day; "
        "another day generates the same sample ending then)",
    )
    parser.set_defaults(handler=lambda args: run(args.database_url, as_of=args.as_of))


def run(
    database_url: str = DEFAULT_DEMO_DATABASE_URL,
    out: TextIO | None = None,
    *,
    as_of: date | None = None,
) -> int:
    from llmgov.bot.demo.run import run_demo

    return run_demo(database_url, out or sys.stdout, as_of)


__all__ = ["DEFAULT_DEMO_DATABASE_URL", "register", "run"]

"""Helpers shared by the CLI subcommands: the database, output formats, dates."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.engine import Engine

from llmgov.models.base import make_engine, require_schema
from llmgov.models.errors import BadInput


def migrated_engine(url: str | None = None) -> Engine:
    """The engine for DATABASE_URL, refusing with `llmgov db upgrade` advice if not migrated."""
    engine = make_engine(url)
    require_schema(engine)
    return engine


def add_format(parser: argparse.ArgumentParser, *choices: str) -> None:
    choices = choices or ("text", "json")
    parser.add_argument("--format", choices=choices, default=choices[0], help="output format")


def add_as_of(parser: argparse.ArgumentParser) -> None:
    """`--as-of DATE`: answer for that day from every fact now stored for days up to it;
    `--known-at TIMESTAMP`: also leave out facts collected at or after it (the audit view)."""
    parser.add_argument(
        "--as-of",
        type=parse_as_of,
        default=None,
        metavar="DATE",
        help="answer for this day (YYYY-MM-DD), from every fact stored for days up to it",
    )
    parser.add_argument(
        "--known-at",
        type=parse_known_at,
        default=None,
        metavar="TIMESTAMP",
        help="only facts collected before this moment (ISO 8601, UTC unless a zone is given): "
        "the answer as it could be given then",
    )


def parse_as_of(text: str) -> date:
    day = parse_date(text)
    today = datetime.now(UTC).date()
    if day > today:
        raise argparse.ArgumentTypeError(
            f"{text} is in the future (today is {today:%Y-%m-%d} UTC); give today or an earlier day"
        )
    return day


def parse_known_at(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a timestamp; write it as YYYY-MM-DDTHH:MM[:SS][+00:00], "
            "e.g. 2026-11-27T09:00"
        ) from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if moment > datetime.now(UTC):
        raise argparse.ArgumentTypeError(f"{text} is in the future; give a past moment")
    return moment.astimezone(UTC)


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-11-01"
        ) from None


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str, sort_keys=False)
    sys.stdout.write("\n")


__all__ = ["BadInput", "add_as_of", "add_format", "migrated_engine", "parse_date", "print_json"]

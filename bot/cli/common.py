"""Helpers shared by the CLI subcommands: the database, output formats, dates."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
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
    parser.add_argument(
        "--as-of",
        type=parse_date,
        default=None,
        metavar="DATE",
        help="answer as of this date (YYYY-MM-DD), from the facts known then",
    )


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

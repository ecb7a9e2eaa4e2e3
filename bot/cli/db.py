"""`llmgov db upgrade|downgrade|current`."""

from __future__ import annotations

import argparse

from llmgov.models.base import make_engine
from llmgov.models.migrate import current_revision, downgrade, head_revision, upgrade


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("db", help="database migrations (Alembic)")
    actions = parser.add_subparsers(dest="db_command", metavar="ACTION")
    actions.required = True
    up = actions.add_parser("upgrade", help="migrate DATABASE_URL to the latest schema")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(handler=_upgrade)
    down = actions.add_parser("downgrade", help="migrate DATABASE_URL back to REVISION")
    down.add_argument("revision")
    down.set_defaults(handler=_downgrade)
    current = actions.add_parser("current", help="print the schema revision of DATABASE_URL")
    current.set_defaults(handler=_current)


def _upgrade(args: argparse.Namespace) -> int:
    engine = make_engine()
    upgrade(engine, args.revision)
    print(f"database at revision {current_revision(engine)}")
    return 0


def _downgrade(args: argparse.Namespace) -> int:
    engine = make_engine()
    downgrade(engine, args.revision)
    print(f"database at revision {current_revision(engine)}")
    return 0


def _current(_args: argparse.Namespace) -> int:
    engine = make_engine()
    print(f"current: {current_revision(engine) or 'none (not migrated)'}; head: {head_revision()}")
    return 0

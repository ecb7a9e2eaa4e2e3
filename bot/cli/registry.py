"""`llmgov registry import FILE.yaml [--dry-run]` and `llmgov registry export [--output FILE]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from llmgov.bot.cli.common import migrated_engine
from llmgov.governance.registry_file import export_registry_text, import_registry_file
from llmgov.models.base import make_session_factory, transaction
from llmgov.models.errors import BadInput


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "registry",
        help="the ownership registry as code (YAML): import and export",
        description="Format: docs/registry.md.",
    )
    actions = parser.add_subparsers(dest="registry_command", metavar="ACTION")
    actions.required = True
    load = actions.add_parser(
        "import",
        help="validate a registry file and upsert its teams, people and workloads",
        description=(
            "Validate FILE and upsert it into DATABASE_URL in one transaction: any problem "
            "rejects the whole file (exit 2) and nothing is written. Nothing is deleted."
        ),
    )
    load.add_argument("file", metavar="FILE.yaml", help="the registry file")
    load.add_argument(
        "--dry-run", action="store_true", help="print what would change; write nothing"
    )
    load.set_defaults(handler=_import)
    dump = actions.add_parser("export", help="print the registry as a registry file")
    dump.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    dump.set_defaults(handler=_export)


def _import(args: argparse.Namespace) -> int:
    engine = migrated_engine()  # an unmigrated database first: nothing else can be checked
    try:
        with transaction(make_session_factory(engine)) as session:
            plan = import_registry_file(session, args.file, dry_run=args.dry_run)
            if args.dry_run:
                session.rollback()  # belt and braces: a dry run leaves nothing behind
    finally:
        engine.dispose()
    print(plan.render())
    return 0


def _export(args: argparse.Namespace) -> int:
    engine = migrated_engine()
    try:
        with transaction(make_session_factory(engine)) as session:
            text = export_registry_text(session)
    finally:
        engine.dispose()
    if not args.output:
        sys.stdout.write(text)
        return 0
    path = Path(args.output)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise BadInput(f"cannot write {path}: {error.strerror}") from None
    print(f"registry written to {path}", file=sys.stderr)
    return 0

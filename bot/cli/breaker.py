"""`llmgov breaker setup`: create each workload's managed deny policy (a person runs it).

`llmgov breaker reconcile`: compare the circuit breakers' changes in AWS with their stored
state; report each difference and (unless --report-only) repair what is safe to repair.

Exit status: 0 when nothing differs or everything found was repaired, 1 when a difference
is left for a person (the report says what to do).
"""

from __future__ import annotations

import argparse

from llmgov.bot.cli.common import add_format, migrated_engine, print_json
from llmgov.bot.settings import Settings
from llmgov.models.base import make_session_factory, utcnow


def register(subparsers: argparse._SubParsersAction) -> None:
    breaker = subparsers.add_parser("breaker", help="the cost circuit breaker's maintenance")
    commands = breaker.add_subparsers(dest="breaker_command", metavar="SUBCOMMAND")
    commands.required = True
    reconcile = commands.add_parser(
        "reconcile",
        help="compare the breakers' AWS changes with their state; finish interrupted ones",
    )
    reconcile.add_argument(
        "--report-only", action="store_true", help="report the differences, change nothing"
    )
    add_format(reconcile)
    reconcile.set_defaults(handler=_reconcile)

    setup = commands.add_parser(
        "setup",
        help="create each workload's managed deny policy (run with IAM-admin credentials)",
    )
    setup.add_argument("--update", action="store_true", help="replace policies that differ")
    setup.add_argument("--dry-run", action="store_true", help="say what it would do")
    setup.set_defaults(handler=_setup)


def _session_factory():
    return make_session_factory(migrated_engine(Settings.from_env().database_url))


def _reconcile(args: argparse.Namespace) -> int:
    from llmgov.guardrails.reconcile import reconcile

    report = reconcile(_session_factory(), utcnow(), repair=not args.report_only)
    if args.format == "json":
        print_json(report.to_json())
    else:
        print(f"Checked {report.checked} breaker(s); {len(report.differences)} difference(s).")
        for difference in report.differences:
            mark = "repaired" if difference.repaired else "TO DO"
            print(f"[{mark}] {difference.slug} {difference.kind}: {difference.detail}")
    return 0 if all(difference.repaired for difference in report.differences) else 1


def _setup(args: argparse.Namespace) -> int:
    from llmgov.guardrails.setup import setup_policies

    lines = setup_policies(_session_factory(), update=args.update, dry_run=args.dry_run)
    if not lines:
        print("No breaker uses the managed mechanism with a principal; nothing to set up.")
    for line in lines:
        print(line.render())
    return 1 if any(line.result in ("failed", "differs") for line in lines) else 0

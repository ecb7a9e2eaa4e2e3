"""`llmgov breaker reconcile`: compare the circuit breakers' changes in AWS with their stored
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

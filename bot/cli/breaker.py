"""`llmgov breaker setup`: create each workload's managed deny policy (a person runs it).

`llmgov audit export [--since DATE] [--output FILE]`: the audit trail as JSON lines, one
event a line, oldest first.

`llmgov breaker reconcile`: compare the circuit breakers' changes in AWS with their stored
state; report each difference and (unless --report-only) repair what is safe to repair.

Exit status: 0 when nothing differs or everything found was repaired, 1 when a difference
is left for a person (the report says what to do).
"""

from __future__ import annotations

import argparse

from llmgov.bot.cli.common import add_format, migrated_engine, parse_date, print_json
from llmgov.bot.settings import Settings
from llmgov.models.base import make_session_factory, utcnow
from llmgov.models.errors import BadInput


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
    _register_audit(subparsers)

    setup = commands.add_parser(
        "setup",
        help="create each workload's managed deny policy (run with IAM-admin credentials)",
    )
    setup.add_argument("--update", action="store_true", help="replace policies that differ")
    setup.add_argument("--dry-run", action="store_true", help="say what it would do")
    setup.set_defaults(handler=_setup)


def _register_audit(subparsers: argparse._SubParsersAction) -> None:
    audit = subparsers.add_parser("audit", help="the audit trail")
    commands = audit.add_subparsers(dest="audit_command", metavar="SUBCOMMAND")
    commands.required = True
    export = commands.add_parser("export", help="write the audit trail as JSON lines")
    export.add_argument("--since", type=parse_date, metavar="DATE", help="events from this day")
    export.add_argument("--output", metavar="FILE", help="write here instead of stdout")
    export.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    import json
    import sys
    from datetime import UTC, datetime, time

    from sqlalchemy import select

    from llmgov.models.registry import AuditEvent

    query = select(AuditEvent).order_by(AuditEvent.at, AuditEvent.id)
    if args.since:
        query = query.where(AuditEvent.at >= datetime.combine(args.since, time(), tzinfo=UTC))
    try:
        out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    except OSError as error:
        raise BadInput(f"cannot write {args.output}: {error.strerror}") from None
    count = 0
    with _session_factory()() as session:
        for event in session.scalars(query).yield_per(500):
            row = {
                "id": event.id,
                "at": event.at.isoformat(),
                "actor": event.actor,
                "action": event.action,
                "entity": event.entity,
                "entity_key": event.entity_key,
                "outcome": event.outcome,
                "reason": event.reason,
                "before": event.before,
                "after": event.after,
            }
            out.write(json.dumps(row, default=str, sort_keys=True) + "\n")
            count += 1
    if args.output:
        out.close()
        print(f"{count} audit event(s) written to {args.output}", file=sys.stderr)
    return 0


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
        for checked in report.confirmations:
            print(f"[{checked.kind}] {checked.slug}: {checked.detail}")
    problems = [d for d in report.differences if not d.repaired]
    problems += [c for c in report.confirmations if c.kind == "unconfirmed"]
    return 1 if problems else 0


def _setup(args: argparse.Namespace) -> int:
    from llmgov.guardrails.setup import setup_policies

    lines = setup_policies(_session_factory(), update=args.update, dry_run=args.dry_run)
    if not lines:
        print("No breaker uses the managed mechanism with a principal; nothing to set up.")
    for line in lines:
        print(line.render())
    return 1 if any(line.result in ("failed", "differs") for line in lines) else 0

"""`llmgov check`, `llmgov digest` and `llmgov gaps`: the governance loop, now.

With `--dry-run` nothing is written or posted: they print what would be posted. Without it
they create the alerts and messages, and deliver them through the outbox before exiting
(like the scheduler does), when SLACK_BOT_TOKEN is set; otherwise the messages wait in the
outbox for `llmgov worker`.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from llmgov.bot.cli.common import BadInput, add_as_of, add_format, migrated_engine, print_json
from llmgov.bot.settings import Settings
from llmgov.models.base import make_session_factory, utcnow

# bot.notify (numpy, matplotlib, the checks) is imported by the handlers, not at start-up:
# `llmgov --help` and the other subcommands stay fast.


def register(subparsers: argparse._SubParsersAction) -> None:
    check = subparsers.add_parser(
        "check", help="evaluate the checks, update alerts and post what changed"
    )
    _common(check)
    check.set_defaults(handler=_check)

    digest = subparsers.add_parser("digest", help="send the weekly digest to each owner, now")
    _common(digest)
    digest.add_argument(
        "--owner", metavar="ID", help="only this owner (Slack user id, <@U…> or email)"
    )
    digest.set_defaults(handler=_digest)

    gaps = subparsers.add_parser("gaps", help="post the weekly ownership-gap review, now")
    _common(gaps)
    gaps.set_defaults(handler=_gaps)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dry-run", action="store_true", help="post nothing; print what would be posted"
    )
    add_format(parser)
    add_as_of(parser)


def _no_known_at(args: argparse.Namespace) -> None:
    if getattr(args, "known_at", None) is not None:
        raise BadInput("--known-at applies to llmgov cost, decide and ask; use --as-of here")


def _now(as_of: date | None) -> datetime:
    """The clock of the run: now, or the end of the `--as-of` day (reproducible answers)."""
    if as_of is None:
        return utcnow()
    return datetime.combine(as_of + timedelta(days=1), time(), tzinfo=UTC)


def _setup() -> tuple[Settings, Any]:
    settings = Settings.from_env()
    return settings, make_session_factory(migrated_engine(settings.database_url))


def _deliver(session_factory, settings: Settings, count: int) -> dict[str, Any] | None:
    from llmgov.bot.notify import deliver_now

    if count == 0:
        return None
    report = deliver_now(session_factory, settings)
    if report is None:
        print(
            f"{count} message(s) queued; SLACK_BOT_TOKEN is not set, so they wait in the "
            "outbox until `llmgov worker` (or a run with the token) sends them",
            file=sys.stderr,
        )
    elif report.get("failed") or report.get("pending_left"):
        print(
            f"delivery: {report.get('sent', 0)} sent, {report.get('failed', 0)} failed, "
            f"{report.get('pending_left', 0)} still pending (see the outbox table)",
            file=sys.stderr,
        )
    return report


def _print_messages(messages: list, dry_run: bool) -> None:
    verb = "Would send" if dry_run else "Queued"
    print(f"\n{verb} {len(messages)} Slack message(s).")
    for message in messages:
        print(f"\n--- {message.method} to {message.channel} ({message.key})")
        print(message.preview().rstrip())


def _check(args: argparse.Namespace) -> int:
    from llmgov.bot.notify import run_checks
    from llmgov.governance.findings import format_money

    _no_known_at(args)
    settings, session_factory = _setup()
    run = run_checks(
        session_factory, settings, _now(args.as_of), dry_run=args.dry_run, as_of=args.as_of
    )
    delivery = None if args.dry_run else _deliver(session_factory, settings, len(run.messages))
    if args.format == "json":
        print_json([finding.to_json() for finding in run.findings])
        return 0
    if not run.findings:
        print("No findings.")
    for finding in run.findings:
        subject = finding.workload or finding.team or "-"
        money = format_money(finding.amount, finding.currency)
        print(f"[{finding.severity}] {finding.kind} {subject} ({money}): {finding.message}")
    counts: dict[str, int] = {}
    for change in run.changes:
        counts[change["action"]] = counts.get(change["action"], 0) + 1
    if counts:
        print("\nAlerts: " + ", ".join(f"{n} {action}" for action, n in sorted(counts.items())))
    _print_messages(run.messages, args.dry_run)
    if delivery:
        print(f"Delivered: {delivery.get('sent', 0)} sent, {delivery.get('failed', 0)} failed.")
    return 0


def _digest(args: argparse.Namespace) -> int:
    from llmgov.bot.notify import send_digests

    _no_known_at(args)
    settings, session_factory = _setup()
    run = send_digests(
        session_factory,
        settings,
        _now(args.as_of),
        owner=args.owner,
        dry_run=args.dry_run,
        as_of=args.as_of,
    )
    delivery = None if args.dry_run else _deliver(session_factory, settings, len(run.messages))
    if args.format == "json":
        print_json(run.to_json() | {"delivery": delivery})
        return 0
    print(f"{len(run.digests)} owner(s) with workloads.")
    if run.already_sent:
        print("Already sent this week: " + ", ".join(run.already_sent))
    _print_messages(run.messages, args.dry_run)
    return 0


def _gaps(args: argparse.Namespace) -> int:
    from llmgov.bot.notify import send_gap_review

    _no_known_at(args)
    settings, session_factory = _setup()
    run = send_gap_review(
        session_factory, settings, _now(args.as_of), dry_run=args.dry_run, as_of=args.as_of
    )
    delivery = None if args.dry_run else _deliver(session_factory, settings, len(run.messages))
    if args.format == "json":
        print_json(run.to_json() | {"delivery": delivery})
        return 0
    review = run.review
    share = "n/a" if review.owned_share is None else f"{review.owned_share:.0%}"
    print(f"Share of last week's spend with an active owner: {share}; {len(review.rows)} gap(s).")
    if run.already_sent:
        print("This week's review was already posted.")
    _print_messages(run.messages, args.dry_run)
    return 0


__all__ = ["register"]

"""`llmgov worker`: the scheduler alone, in the foreground (the Procfile's worker process).

`llmgov worker --once JOB` runs one job now (under its lease) and then delivers what it
queued; `--list` prints the schedule. Logs are JSON lines on stderr, without secrets.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
from typing import Any

from llmgov.bot.cli.common import migrated_engine
from llmgov.bot.jobs import JOBS, JobContext, ScheduleConfig, run_job
from llmgov.bot.logging_setup import configure_logging
from llmgov.bot.scheduler import build_scheduler, job_plan
from llmgov.bot.settings import Settings
from llmgov.models.base import make_session_factory

log = logging.getLogger("llmgov.worker")

DELIVERY_SECONDS = 120  # after --once: how long to keep delivering what the job queued


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run the scheduler alone (collect, check, digest, gap review, deliver)",
        description="Run the scheduled jobs in the foreground. A database lease keeps two "
        "workers (or a worker and `llmgov serve`) from running the same job.",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--once",
        choices=list(JOBS),
        metavar="JOB",
        help=f"run one job now, deliver what it queued, and exit; JOB is one of: {', '.join(JOBS)}",
    )
    group.add_argument("--list", action="store_true", help="print the schedule and exit")
    parser.add_argument(
        "--dry-run", action="store_true", help="with --once: post nothing, deliver nothing"
    )
    parser.set_defaults(handler=_worker)


def _slack_client(settings: Settings) -> Any | None:
    if not settings.slack_bot_token:
        log.warning("SLACK_BOT_TOKEN is not set: messages stay in the outbox until it is")
        return None
    from llmgov.bot.slack_client import make_client

    return make_client(settings)


def _worker(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    config = ScheduleConfig.from_env()  # bad LLMGOV_* values: a clear message, exit 2
    if args.list:
        for job in job_plan(config):
            print(f"{job.id:20} {job.trigger}  {job.description}")
        print(f"{'checks':20} after each collection  evaluate the checks")
        return 0
    configure_logging(settings, level=logging.DEBUG if args.verbose else logging.INFO)
    engine = migrated_engine(settings.database_url)
    session_factory = make_session_factory(engine)
    client = _slack_client(settings)
    if args.once:
        ctx = JobContext(session_factory, settings, client, config=config, dry_run=args.dry_run)
        return _run_once(ctx, args.once)

    scheduler = build_scheduler(settings, session_factory, client, blocking=True, config=config)

    def stop(signum: int, _frame: Any) -> None:
        log.info("worker stopping (signal %d)", signum)
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, stop)
    log.info("worker started with jobs %s", ", ".join(j.id for j in job_plan(config)))
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()  # blocks until stopped
    return 0


def _run_once(ctx: JobContext, job_id: str) -> int:
    result = run_job(ctx, job_id, force=True)
    summary: dict[str, Any] = {
        "job": job_id,
        "outcome": result.outcome,
        "seconds": round(result.seconds, 3),
        "detail": result.detail,
    }
    if result.error:
        summary["error"] = result.error
    if result.outcome == "success" and job_id != "flush_outbox" and not ctx.dry_run:
        summary["delivery"] = _deliver(ctx)
    json.dump(summary, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
    if result.outcome == "skipped":
        print(
            f"llmgov worker: {job_id} is running in another scheduler right now; try later",
            file=sys.stderr,
        )
    return 1 if result.outcome == "failure" else 0


def _deliver(ctx: JobContext) -> dict[str, Any]:
    """Flush the outbox (under its lease) until empty or DELIVERY_SECONDS have passed."""
    started = ctx.clock.monotonic()
    delivered: dict[str, Any] = {"sent": 0, "failed": 0}
    while ctx.clock.monotonic() - started < DELIVERY_SECONDS:
        flush = run_job(ctx, "flush_outbox")
        detail = flush.detail or {}
        if flush.outcome != "success" or "skipped" in detail:
            delivered["note"] = detail.get("skipped") or f"flush {flush.outcome}"
            break
        delivered["sent"] += detail.get("sent", 0) + detail.get("already_sent", 0)
        delivered["failed"] += detail.get("failed", 0)
        if not any(detail.get(k) for k in ("sent", "already_sent", "rate_limited", "retried")):
            break  # nothing due now; the worker delivers the rest as it comes due
    return delivered

"""The scheduled jobs. Each body is a plain function of `now` and a `JobContext` (the
database, settings, Slack client, clock): testable without a scheduler, and run by one.

`run_job(ctx, job_id)` wraps a body in a database lease (governance/leases.py), so two
schedulers never run the same job; it also records runs and failures for `/metrics` and
logs the outcome. A failing job is logged and counted, never raised into the scheduler.

The governance functions (`bot.notify.run_checks`, `send_digests`, `send_gap_review`) and
the collectors (`collectors.run.collect`) are imported inside the bodies, so the scheduler
runs (and says clearly what is missing) even before those modules exist.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from llmgov.bot import metrics
from llmgov.bot.outbox import DmChannels, deliver_pending
from llmgov.bot.pacing import Clock, Pacer, SystemClock
from llmgov.bot.settings import Settings
from llmgov.governance import leases
from llmgov.governance.owners import owners_due_digest
from llmgov.models.errors import BadInput

if TYPE_CHECKING:  # imported for its type only: it brings matplotlib
    from llmgov.bot.chart_worker import ChartWorker

log = logging.getLogger("llmgov.jobs")

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# Source names passed to collectors.run.collect; overridable by LLMGOV_HOURLY_SOURCES /
# LLMGOV_DAILY_SOURCES or by collectors.run.HOURLY_SOURCES / DAILY_SOURCES when defined.
DEFAULT_HOURLY_SOURCES = ("bedrock_cloudwatch", "gpu_cloudwatch", "upstream", "prometheus")
DEFAULT_DAILY_SOURCES = ("cost_explorer", "gpu_prices")


def parse_weekday(name: str, text: str) -> int:
    """`mon`..`sun`, a full day name, or ISO 1 (Monday)..7 (Sunday) -> 0..6."""
    value = text.strip().lower()
    if value.isdigit() and 1 <= int(value) <= 7:
        return int(value) - 1
    if value in WEEKDAYS:
        return WEEKDAYS.index(value)
    if value in DAY_NAMES:
        return DAY_NAMES.index(value)
    raise BadInput(f"{name}={text!r} is not a weekday: write mon..sun, or 1 (Monday) to 7 (Sunday)")


def parse_hour(name: str, text: str) -> int:
    if text.strip().isdigit() and 0 <= int(text) <= 23:
        return int(text)
    raise BadInput(f"{name}={text!r} is not an hour: write a whole hour from 0 to 23, e.g. 9")


def parse_cadence(name: str, text: str) -> int:
    """Minutes between early-warning runs: 0 (off) or a divisor of 60 (runs stay on the clock)."""
    value = text.strip()
    if value.isdigit() and (int(value) == 0 or 60 % int(value) == 0):
        return int(value)
    raise BadInput(
        f"{name}={text!r} is not a cadence: write minutes that divide an hour "
        "(1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60), or 0 to turn the early warning off"
    )


def _sources(name: str, text: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    if text is None:
        return default
    sources = tuple(part.strip() for part in text.split(",") if part.strip())
    if not sources:
        raise BadInput(f"{name} is empty: list source names separated by commas")
    return sources


@dataclass(frozen=True)
class ScheduleConfig:
    """When each job runs. Times are UTC except the digest (each owner's own time zone)."""

    digest_weekday: int = 0  # Monday
    digest_hour: int = 9
    digest_window: timedelta = timedelta(hours=24)  # catch-up after a missed slot
    gaps_weekday: int = 0
    gaps_hour: int = 9
    cloudwatch_minute: int = 10  # CloudWatch datapoints for the past hour have settled
    billing_hour: int = 6
    owner_refresh_hour: int = 5
    flush_seconds: int = 5
    early_warning_minutes: int = 5  # minute-level Bedrock check cadence; 0 turns it off
    flush_budget_seconds: float = 30.0  # one flush never runs longer; the next continues
    hourly_sources: tuple[str, ...] | None = None  # None: ask collectors.run, else defaults
    daily_sources: tuple[str, ...] | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ScheduleConfig:
        """LLMGOV_DIGEST_DAY, LLMGOV_DIGEST_HOUR, LLMGOV_GAPS_DAY, LLMGOV_GAPS_HOUR,
        LLMGOV_HOURLY_SOURCES, LLMGOV_DAILY_SOURCES, LLMGOV_EARLY_WARNING_MINUTES; bad values
        raise BadInput."""
        env = os.environ if environ is None else environ
        options: dict[str, Any] = {}
        for key, attribute, parse in (
            ("LLMGOV_DIGEST_DAY", "digest_weekday", parse_weekday),
            ("LLMGOV_DIGEST_HOUR", "digest_hour", parse_hour),
            ("LLMGOV_GAPS_DAY", "gaps_weekday", parse_weekday),
            ("LLMGOV_GAPS_HOUR", "gaps_hour", parse_hour),
        ):
            if env.get(key):
                options[attribute] = parse(key, env[key])
        for key, attribute in (
            ("LLMGOV_HOURLY_SOURCES", "hourly_sources"),
            ("LLMGOV_DAILY_SOURCES", "daily_sources"),
        ):
            if key in env:
                options[attribute] = _sources(key, env[key], ())
        if env.get("LLMGOV_EARLY_WARNING_MINUTES"):
            options["early_warning_minutes"] = parse_cadence(
                "LLMGOV_EARLY_WARNING_MINUTES", env["LLMGOV_EARLY_WARNING_MINUTES"]
            )
        return cls(**options)


def default_holder() -> str:
    """Who holds a lease: this host and process, unique per scheduler."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class JobContext:
    """Everything a job body needs, injected (tests pass a virtual clock and the mock's client)."""

    session_factory: sessionmaker[Session]
    settings: Settings
    client: Any | None = None  # a Slack WebClient; None: nothing is delivered
    config: ScheduleConfig = field(default_factory=ScheduleConfig)
    clock: Clock = field(default_factory=SystemClock)
    holder: str = field(default_factory=default_holder)
    dry_run: bool = False
    pacer: Pacer | None = None  # shared by the outbox and the owner refresh in a process
    dm_channels: DmChannels = field(default_factory=DmChannels)
    # the process that draws the digests' charts in `llmgov serve` (bot/chart_worker.py)
    charts: ChartWorker | None = None
    aws: Any | None = None  # collectors.aws.AwsClients for the early warning (None: built per run)

    def __post_init__(self) -> None:
        if self.pacer is None:
            self.pacer = Pacer(self.clock)


# ---- the job bodies ----------------------------------------------------------------------


def collect_job(ctx: JobContext, now: datetime, sources: tuple[str, ...] | None) -> dict:
    """Collect from those of `sources` that are configured (None: every configured source),
    then run the checks, whether or not anything arrived (stale data is a finding too)."""
    from llmgov.collectors.run import collect

    chosen = _configured(ctx, sources)
    collected: Any = {"skipped": "none of these sources is configured"}
    if chosen is None or chosen:
        result = collect(ctx.session_factory, now, sources=chosen)
        collected = _summary(result)
    checks = run_job(ctx, "checks", now)
    return {"sources": chosen, "collected": collected, "checks": checks.outcome}


def _configured(ctx: JobContext, wanted: tuple[str, ...] | None) -> list[str] | None:
    """`wanted` restricted to the sources the registry configures (None: let collect choose)."""
    if wanted is None:
        return None
    from llmgov.collectors.run import configured_sources

    configured = set(configured_sources(ctx.session_factory))
    if "cost_explorer" in configured:
        configured.add("gpu_prices")  # refreshed from the AWS Price List API with the same access
    return [source for source in wanted if source in configured]


def check_job(ctx: JobContext, now: datetime) -> Any:
    from llmgov.bot.notify import run_checks

    return _summary(run_checks(ctx.session_factory, ctx.settings, now, dry_run=ctx.dry_run))


def digest_job(ctx: JobContext, now: datetime) -> dict:
    """Send the weekly digest to each owner whose local digest slot has come this week."""
    with ctx.session_factory() as session:
        due = owners_due_digest(
            session,
            now,
            weekday=ctx.config.digest_weekday,
            hour=ctx.config.digest_hour,
            window=ctx.config.digest_window,
        )
    if not due:
        return {"owners": 0}
    from llmgov.bot.notify import send_digests

    failed: list[str] = []
    for owner in due:
        try:
            send_digests(
                ctx.session_factory,
                ctx.settings,
                now,
                owner=owner.slack_id,
                dry_run=ctx.dry_run,
                charts=ctx.charts,
            )
        except Exception:  # one owner's failure must not cost the others their digest
            log.exception("digest for %s failed", owner.slack_id)
            failed.append(owner.slack_id)
    if failed:
        raise RuntimeError(
            f"digest failed for {len(failed)} of {len(due)} owners: {', '.join(failed)}"
        )
    return {"owners": len(due)}


def gap_review_job(ctx: JobContext, now: datetime) -> Any:
    from llmgov.bot.notify import send_gap_review

    return _summary(send_gap_review(ctx.session_factory, ctx.settings, now, dry_run=ctx.dry_run))


def refresh_owners_job(ctx: JobContext, now: datetime) -> dict:
    if ctx.client is None:
        return {"skipped": "no Slack client (set SLACK_BOT_TOKEN)"}
    from llmgov.bot.owner_refresh import refresh_owners

    report = refresh_owners(
        ctx.session_factory,
        ctx.client,
        now,
        clock=ctx.clock,
        pacer=ctx.pacer,
        max_seconds=JOBS["refresh_owners"].ttl.total_seconds() * 0.8,
    )
    return report.as_dict()


def early_warning_job(ctx: JobContext, now: datetime) -> dict:
    """Minute-level Bedrock usage → retry storms and runaways → alerts (bot/early_warning.py)."""
    from llmgov.bot.early_warning import run_early_warning

    report = run_early_warning(
        ctx.session_factory, ctx.settings, now, aws=ctx.aws, dry_run=ctx.dry_run
    )
    return report.as_dict()


def flush_outbox_job(ctx: JobContext, now: datetime) -> dict:
    if ctx.client is None or ctx.dry_run:
        return {"skipped": "dry run" if ctx.dry_run else "no Slack client (set SLACK_BOT_TOKEN)"}
    report = deliver_pending(
        ctx.session_factory,
        ctx.client,
        now=now,
        max_seconds=ctx.config.flush_budget_seconds,
        clock=ctx.clock,
        pacer=ctx.pacer,
        dm_channels=ctx.dm_channels,
    )
    return report.as_dict()


def breaker_reconcile_job(ctx: JobContext, now: datetime) -> Any:
    """Repair interrupted trips and resets, and confirm trips; cards follow the changes."""
    from llmgov.bot.breaker_notify import refresh_breaker_copies as refresh
    from llmgov.guardrails.reconcile import reconcile

    report = reconcile(ctx.session_factory, now, repair=not ctx.dry_run)
    for slug in sorted({d.slug for d in report.differences + report.confirmations}):
        if not ctx.dry_run:
            refresh(ctx.session_factory, slug, now)
    return report.to_json()


def _summary(result: Any) -> Any:
    """Something loggable from whatever a governance function returned."""
    if result is None or isinstance(result, int | float | str | bool | dict):
        return result
    if hasattr(result, "as_dict"):
        return result.as_dict()
    if isinstance(result, list | tuple):
        return {"count": len(result)}
    return repr(result)[:200]


# ---- the registry of jobs and the lease wrapper -----------------------------------------


@dataclass(frozen=True)
class JobSpec:
    body: Callable[[JobContext, datetime], Any]
    ttl: timedelta  # the lease; longer than the job can run
    min_interval: timedelta | None  # a second scheduler does not re-run it within this
    quiet: bool = False  # runs every few seconds: log at INFO only when it did something


JOBS: dict[str, JobSpec] = {
    "collect_cloudwatch": JobSpec(
        lambda ctx, now: collect_job(ctx, now, hourly_sources(ctx.config)),
        ttl=timedelta(minutes=45),
        min_interval=timedelta(minutes=30),
    ),
    "collect_billing": JobSpec(
        lambda ctx, now: collect_job(ctx, now, daily_sources(ctx.config)),
        ttl=timedelta(hours=2),
        min_interval=timedelta(hours=12),
    ),
    "checks": JobSpec(check_job, ttl=timedelta(minutes=30), min_interval=None),
    "digest": JobSpec(digest_job, ttl=timedelta(minutes=50), min_interval=timedelta(minutes=30)),
    "gap_review": JobSpec(gap_review_job, ttl=timedelta(hours=1), min_interval=timedelta(days=6)),
    "refresh_owners": JobSpec(
        refresh_owners_job, ttl=timedelta(hours=1), min_interval=timedelta(hours=12)
    ),
    "flush_outbox": JobSpec(
        flush_outbox_job, ttl=timedelta(minutes=2), min_interval=None, quiet=True
    ),
    "early_warning": JobSpec(
        early_warning_job, ttl=timedelta(minutes=4), min_interval=timedelta(seconds=50)
    ),
    "breaker_reconcile": JobSpec(
        breaker_reconcile_job, ttl=timedelta(minutes=10), min_interval=timedelta(minutes=5)
    ),
}


def hourly_sources(config: ScheduleConfig) -> tuple[str, ...]:
    return config.hourly_sources or DEFAULT_HOURLY_SOURCES


def daily_sources(config: ScheduleConfig) -> tuple[str, ...]:
    return config.daily_sources or DEFAULT_DAILY_SOURCES


@dataclass
class JobResult:
    job_id: str
    outcome: str  # success, failure, skipped (another scheduler holds it, or ran it just now)
    detail: Any = None
    error: str | None = None
    seconds: float = 0.0


def run_job(
    ctx: JobContext, job_id: str, now: datetime | None = None, *, force: bool = False
) -> JobResult:
    """Run one job under its lease; never raises (the outcome says what happened).

    `force` (a person asked for this run) ignores the job's minimum interval, never a lease
    another scheduler holds.
    """
    if job_id not in JOBS:
        raise BadInput(f"unknown job {job_id!r}; the jobs are: {', '.join(JOBS)}")
    spec = JOBS[job_id]
    now = now or ctx.clock.now()
    min_interval = None if force else spec.min_interval
    if not leases.acquire(ctx.session_factory, job_id, ctx.holder, spec.ttl, now, min_interval):
        log.log(
            logging.DEBUG if spec.quiet else logging.INFO,
            "job %s skipped: another scheduler holds it or ran it recently",
            job_id,
            extra={"job": job_id, "outcome": "skipped"},
        )
        metrics.observe_job(job_id, "skipped", 0.0)
        return JobResult(job_id, "skipped")
    started = ctx.clock.monotonic()
    result = JobResult(job_id, "success")
    try:
        result.detail = spec.body(ctx, now)
    except Exception as error:
        result.outcome = "failure"
        result.error = f"{type(error).__name__}: {error}"
        log.exception(
            "job %s failed: %s", job_id, result.error, extra={"job": job_id, "outcome": "failure"}
        )
    finally:
        result.seconds = ctx.clock.monotonic() - started
        leases.release(
            ctx.session_factory, job_id, ctx.holder, now, completed=result.outcome == "success"
        )
    metrics.observe_job(job_id, result.outcome, result.seconds, finished_at=ctx.clock.now())
    if result.outcome == "success":
        idle = spec.quiet and not any(
            (result.detail or {}).get(k) for k in ("sent", "already_sent", "failed", "retried")
        )
        log.log(
            logging.DEBUG if idle else logging.INFO,
            "job %s done in %.1fs",
            job_id,
            result.seconds,
            extra={"job": job_id, "outcome": "success", "detail": result.detail},
        )
    return result

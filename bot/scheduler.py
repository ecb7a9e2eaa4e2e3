"""The scheduler (APScheduler 3.x): a BackgroundScheduler inside `llmgov serve`, a
BlockingScheduler for `llmgov worker`, both built by `build_scheduler`.

| job id | when (UTC unless said) | does |
|---|---|---|
| collect_cloudwatch | hourly at :10 | CloudWatch sources, then the checks |
| collect_billing | daily 06:20 | billing sources (Cost Explorer), then the checks |
| digest | hourly at :00 | the weekly digest to owners whose local Monday 09:00 has come |
| gap_review | Monday 09:00 | the ownership-gap review in the governance channel |
| refresh_owners | daily 05:30 | users.info / users.lookupByEmail for owners |
| flush_outbox | every 5 s | deliver pending Slack messages |
| early_warning | every 5 min (LLMGOV_EARLY_WARNING_MINUTES; 0: off) | 1-minute Bedrock metrics: retry storms and runaways |

Day and hour of the digest and the gap review: LLMGOV_DIGEST_DAY / LLMGOV_DIGEST_HOUR
(each owner's own time zone) and LLMGOV_GAPS_DAY / LLMGOV_GAPS_HOUR (UTC).

Every job has a stable id (replace_existing), coalesces missed runs into one, runs one
instance at a time and has a misfire grace time; across processes a database lease
(bot/jobs.run_job) keeps two schedulers from running the same job, and a scheduler that
found the lease held tries once more when it lapses (a holder killed mid-job).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.orm import Session, sessionmaker

from llmgov.bot.jobs import JOBS, WEEKDAYS, JobContext, ScheduleConfig, run_job
from llmgov.bot.settings import Settings
from llmgov.models.governance import JobLease

if TYPE_CHECKING:  # imported for its type only: it brings matplotlib
    from llmgov.bot.chart_worker import ChartWorker

log = logging.getLogger("llmgov.scheduler")


@dataclass(frozen=True)
class PlannedJob:
    id: str
    trigger: BaseTrigger
    misfire_grace_seconds: int
    description: str


def job_plan(config: ScheduleConfig) -> list[PlannedJob]:
    """The scheduled jobs and their triggers (the `checks` job runs after each collection)."""
    plan = [
        PlannedJob(
            "collect_cloudwatch",
            CronTrigger(minute=config.cloudwatch_minute, timezone=UTC),
            15 * 60,
            "collect CloudWatch (hourly), then run the checks",
        ),
        PlannedJob(
            "collect_billing",
            CronTrigger(hour=config.billing_hour, minute=20, timezone=UTC),
            2 * 3600,
            "collect billing (daily), then run the checks",
        ),
        PlannedJob(
            "digest",
            CronTrigger(minute=0, timezone=UTC),
            15 * 60,
            "weekly digest to owners whose local digest time has come",
        ),
        PlannedJob(
            "gap_review",
            CronTrigger(
                day_of_week=WEEKDAYS[config.gaps_weekday],
                hour=config.gaps_hour,
                minute=0,
                timezone=UTC,
            ),
            6 * 3600,
            "weekly ownership-gap review",
        ),
        PlannedJob(
            "refresh_owners",
            CronTrigger(hour=config.owner_refresh_hour, minute=30, timezone=UTC),
            2 * 3600,
            "refresh owners from Slack (deactivated owners become owner_inactive)",
        ),
        PlannedJob(
            "flush_outbox",
            IntervalTrigger(seconds=config.flush_seconds, timezone=UTC),
            30,
            "deliver pending Slack messages",
        ),
        PlannedJob(
            "breaker_reconcile",
            CronTrigger(minute="*/15", timezone=UTC),
            10 * 60,
            "compare the circuit breakers' AWS changes with their state; finish interrupted ones",
        ),
    ]
    if config.early_warning_minutes:
        plan.append(
            PlannedJob(
                "early_warning",
                CronTrigger(minute=f"*/{config.early_warning_minutes}", timezone=UTC),
                60,
                "minute-level Bedrock metrics: retry storms and runaways to their owners",
            )
        )
    return plan


JOB_MISFIRE_SECONDS: dict[str, int] = {}  # job id -> its misfire grace, from the plan


def run_scheduled(ctx: JobContext, job_id: str, scheduler: BaseScheduler | None = None) -> None:
    """What the scheduler calls: the job under its lease, at the context clock's now.

    Skipped because another scheduler holds the lease: look again just after it lapses
    (`retry_after_lease`), so a holder killed mid-job does not cost the slot.
    """
    result = run_job(ctx, job_id)
    if scheduler is not None and result.outcome == "skipped":
        retry_after_lease(ctx, job_id, scheduler)


def retry_after_lease(ctx: JobContext, job_id: str, scheduler: BaseScheduler) -> datetime | None:
    """If another holder's unexpired lease stopped this run, schedule one more try a second
    after it expires; returns when (None: nothing to retry). A holder that finishes in time
    records its run, and the retry then skips on the job's minimum interval; one killed
    mid-job never releases, so the retry runs the job. Jobs without a minimum interval run
    every few seconds anyway and are not retried."""
    if JOBS[job_id].min_interval is None:
        return None
    with ctx.session_factory() as session:
        lease = session.get(JobLease, job_id)
        expires = None if lease is None or lease.holder == ctx.holder else lease.expires_at
    if expires is None or expires <= ctx.clock.now():
        return None  # skipped on the minimum interval: the slot's run is done
    when = expires + timedelta(seconds=1)
    scheduler.add_job(
        run_scheduled,
        trigger=DateTrigger(run_date=when, timezone=UTC),
        args=[ctx, job_id, scheduler],
        id=f"{job_id}:after-lease",
        name=f"{job_id} again once the other holder's lease lapses",
        replace_existing=True,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=JOB_MISFIRE_SECONDS.get(job_id, 60),
    )
    log.info(
        "job %s is held by another scheduler until %s: trying again then",
        job_id,
        expires.isoformat(),
        extra={"job": job_id},
    )
    return when


def build_scheduler(
    settings: Settings,
    session_factory: sessionmaker[Session],
    client: Any | None,
    *,
    blocking: bool = False,
    config: ScheduleConfig | None = None,
    context: JobContext | None = None,
    charts: ChartWorker | None = None,
) -> BaseScheduler:
    """A scheduler with every job added (not started). `blocking` for `llmgov worker`;
    `charts`: the serving process's chart worker, which draws the digests' charts too."""
    ctx = context or JobContext(
        session_factory=session_factory,
        settings=settings,
        client=client,
        config=config or ScheduleConfig.from_env(),
        charts=charts,
    )
    scheduler_class = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = scheduler_class(timezone=UTC)
    plan = job_plan(ctx.config)
    JOB_MISFIRE_SECONDS.update({job.id: job.misfire_grace_seconds for job in plan})
    for job in plan:
        scheduler.add_job(
            run_scheduled,
            trigger=job.trigger,
            args=[ctx, job.id, scheduler],
            id=job.id,
            name=job.description,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=job.misfire_grace_seconds,
        )
    scheduler.llmgov_context = ctx  # for `llmgov worker` and tests
    # One INFO line per run of a 5-second job is noise; our own log says what each job did.
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
    return scheduler


def start_background(
    settings: Settings,
    session_factory: sessionmaker[Session],
    client: Any | None,
    charts: ChartWorker | None = None,
) -> BackgroundScheduler:
    """Start the scheduler inside `llmgov serve`; call `.shutdown()` on exit."""
    scheduler = build_scheduler(settings, session_factory, client, charts=charts)
    scheduler.start()
    log.info("scheduler started with jobs %s", ", ".join(j.id for j in scheduler.get_jobs()))
    return scheduler


__all__ = [
    "PlannedJob",
    "build_scheduler",
    "job_plan",
    "retry_after_lease",
    "run_scheduled",
    "start_background",
]

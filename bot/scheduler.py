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

Day and hour of the digest and the gap review: LLMGOV_DIGEST_DAY / LLMGOV_DIGEST_HOUR
(each owner's own time zone) and LLMGOV_GAPS_DAY / LLMGOV_GAPS_HOUR (UTC).

Every job has a stable id (replace_existing), coalesces missed runs into one, runs one
instance at a time and has a misfire grace time; across processes a database lease
(bot/jobs.run_job) keeps two schedulers from running the same job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.orm import Session, sessionmaker

from llmgov.bot.jobs import WEEKDAYS, JobContext, ScheduleConfig, run_job
from llmgov.bot.settings import Settings

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
    return [
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


def run_scheduled(ctx: JobContext, job_id: str) -> None:
    """What the scheduler calls: the job under its lease, at the context clock's now."""
    run_job(ctx, job_id)


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
    for job in job_plan(ctx.config):
        scheduler.add_job(
            run_scheduled,
            trigger=job.trigger,
            args=[ctx, job.id],
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


__all__ = ["PlannedJob", "build_scheduler", "job_plan", "run_scheduled", "start_background"]

"""bot.scheduler: the jobs, their triggers and options, as built (not run)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from llmgov.bot.jobs import JOBS, ScheduleConfig
from llmgov.bot.scheduler import build_scheduler, run_scheduled, start_background
from llmgov.bot.settings import Settings
from llmgov.models.errors import BadInput

EXPECTED = {
    "collect_cloudwatch": 15 * 60,
    "collect_billing": 2 * 3600,
    "digest": 15 * 60,
    "gap_review": 6 * 3600,
    "refresh_owners": 2 * 3600,
    "flush_outbox": 30,
    "early_warning": 60,
    "breaker_reconcile": 10 * 60,
}


def fields(trigger: CronTrigger) -> dict[str, str]:
    return {f.name: str(f) for f in trigger.fields if not f.is_default}


def test_jobs_ids_triggers_and_options(session_factory, monkeypatch):
    for name in ("LLMGOV_DIGEST_DAY", "LLMGOV_GAPS_DAY", "LLMGOV_GAPS_HOUR"):
        monkeypatch.delenv(name, raising=False)
    scheduler = build_scheduler(Settings(), session_factory, None)
    assert isinstance(scheduler, BackgroundScheduler)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == set(EXPECTED)
    assert set(jobs) <= set(JOBS)  # every scheduled id is a runnable job (llmgov worker --once)
    for job_id, job in jobs.items():
        assert job.coalesce is True, job_id
        assert job.max_instances == 1, job_id
        assert job.misfire_grace_time == EXPECTED[job_id], job_id
        assert job.func is run_scheduled and job.args[1] == job_id

    assert fields(jobs["collect_cloudwatch"].trigger) == {"minute": "10"}
    assert fields(jobs["collect_billing"].trigger) == {"hour": "6", "minute": "20"}
    assert fields(jobs["digest"].trigger) == {"minute": "0"}  # hourly: owners' own time zones
    assert fields(jobs["gap_review"].trigger) == {"day_of_week": "mon", "hour": "9", "minute": "0"}
    assert fields(jobs["refresh_owners"].trigger) == {"hour": "5", "minute": "30"}
    assert fields(jobs["breaker_reconcile"].trigger) == {"minute": "*/15"}
    flush = jobs["flush_outbox"].trigger
    assert isinstance(flush, IntervalTrigger) and flush.interval.total_seconds() == 5
    for job in jobs.values():
        assert str(job.trigger.timezone) == "UTC"


def test_next_run_times_follow_the_triggers(session_factory):
    scheduler = build_scheduler(Settings(), session_factory, None, config=ScheduleConfig())
    jobs = {job.id: job for job in scheduler.get_jobs()}
    now = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)  # a Wednesday
    fire = {job_id: job.trigger.get_next_fire_time(None, now) for job_id, job in jobs.items()}
    assert fire["collect_cloudwatch"] == datetime(2026, 3, 4, 11, 10, tzinfo=UTC)
    assert fire["digest"] == datetime(2026, 3, 4, 11, 0, tzinfo=UTC)
    assert fire["gap_review"] == datetime(2026, 3, 9, 9, 0, tzinfo=UTC)  # next Monday
    assert fire["collect_billing"] == datetime(2026, 3, 5, 6, 20, tzinfo=UTC)


def test_gap_review_day_and_hour_come_from_the_environment(session_factory, monkeypatch):
    monkeypatch.setenv("LLMGOV_GAPS_DAY", "friday")
    monkeypatch.setenv("LLMGOV_GAPS_HOUR", "16")
    monkeypatch.setenv("LLMGOV_DIGEST_DAY", "2")
    monkeypatch.setenv("LLMGOV_DIGEST_HOUR", "8")
    scheduler = build_scheduler(Settings(), session_factory, None)
    gap = scheduler.get_job("gap_review")
    assert fields(gap.trigger) == {"day_of_week": "fri", "hour": "16", "minute": "0"}
    context = scheduler.llmgov_context
    assert (context.config.digest_weekday, context.config.digest_hour) == (1, 8)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("LLMGOV_DIGEST_DAY", "someday", "is not a weekday"),
        ("LLMGOV_DIGEST_DAY", "8", "is not a weekday"),
        ("LLMGOV_GAPS_HOUR", "24", "is not an hour"),
        ("LLMGOV_HOURLY_SOURCES", " , ", "is empty"),
    ],
)
def test_bad_schedule_settings_are_refused_clearly(name, value, message):
    with pytest.raises(BadInput, match=message):
        ScheduleConfig.from_env({name: value})


def test_blocking_variant_for_the_worker(session_factory):
    scheduler = build_scheduler(Settings(), session_factory, None, blocking=True)
    assert isinstance(scheduler, BlockingScheduler)
    assert {job.id for job in scheduler.get_jobs()} == set(EXPECTED)


def test_stable_ids_replace_rather_than_duplicate(session_factory):
    scheduler = build_scheduler(Settings(), session_factory, None)
    scheduler.start(paused=True)
    try:
        for job in scheduler.get_jobs():
            scheduler.add_job(
                job.func, job.trigger, args=job.args, id=job.id, replace_existing=True
            )
        assert sorted(job.id for job in scheduler.get_jobs()) == sorted(EXPECTED)
    finally:
        scheduler.shutdown(wait=False)


def test_start_background_runs_and_shuts_down(session_factory):
    scheduler = start_background(Settings(), session_factory, None)
    try:
        assert scheduler.running
        assert scheduler.get_job("flush_outbox").next_run_time is not None
    finally:
        scheduler.shutdown(wait=False)
    assert not scheduler.running

"""Two schedulers on one database: every slot's job runs once, and a worker killed mid-job
(SIGKILL) costs no slot: the other runs the job once the dead holder's lease lapses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from llmgov.bot import jobs
from llmgov.bot.jobs import JobContext, JobSpec
from llmgov.bot.scheduler import run_scheduled
from llmgov.bot.settings import Settings
from llmgov.governance.leases import holder_of
from llmgov.models.governance import JobLease
from tests.support.clock import FakeClock

REPO = Path(__file__).resolve().parents[2]

DOOMED_WORKER = """
import sys, time
from datetime import timedelta
from llmgov.bot import jobs
from llmgov.bot.jobs import JobContext, JobSpec, run_job
from llmgov.bot.settings import Settings
from llmgov.models.base import make_engine, make_session_factory
import pytest

pytestmark = pytest.mark.slow  # whole processes: -m 'not slow' skips them

def body(ctx, now):
    print("started", flush=True)
    time.sleep(120)  # killed long before this ends

jobs.JOBS["collect_slow"] = JobSpec(
    body, ttl=timedelta(seconds=float(sys.argv[2])), min_interval=timedelta(minutes=30)
)
factory = make_session_factory(make_engine(sys.argv[1]))
run_job(JobContext(factory, Settings(), None, holder="doomed"), "collect_slow")
"""


class RecordingScheduler:
    """Stands in for APScheduler: keeps the one-off jobs it is asked to add."""

    def __init__(self) -> None:
        self.added: list[dict] = []

    def add_job(self, func, trigger, args, **options) -> None:
        self.added.append({"func": func, "run_date": trigger.run_date, "args": args, **options})


def test_a_worker_killed_mid_job_is_replaced_once_its_lease_lapses(
    database_url, engine, session_factory, monkeypatch
):
    ttl = 40.0
    doomed = subprocess.Popen(
        [sys.executable, "-c", DOOMED_WORKER, database_url, str(ttl)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert doomed.stdout.readline().strip() == "started"  # it holds the lease, mid-job
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=30)
    runs: list[str] = []
    monkeypatch.setitem(
        jobs.JOBS,
        "collect_slow",
        JobSpec(
            lambda ctx, now: runs.append(ctx.holder),
            ttl=timedelta(seconds=ttl),
            min_interval=timedelta(minutes=30),
        ),
    )
    clock = FakeClock(datetime.now(UTC))
    survivor = JobContext(session_factory, Settings(), None, clock=clock, holder="survivor")
    scheduler = RecordingScheduler()

    # Its own slot fires while the dead worker's lease is still valid: skipped, retry planned.
    run_scheduled(survivor, "collect_slow", scheduler)
    assert runs == []
    with session_factory() as session:
        lease = session.get(JobLease, "collect_slow")
    assert lease.holder == "doomed"
    [retry] = scheduler.added
    assert retry["run_date"] == lease.expires_at + timedelta(seconds=1)
    assert retry["id"] == "collect_slow:after-lease"

    clock.advance((retry["run_date"] - clock.now()).total_seconds())
    retry["func"](*retry["args"])
    assert runs == ["survivor"]  # the slot's job ran, once, on the surviving worker
    assert holder_of(session_factory, "collect_slow", clock.now()) is None
    # Asked again in the same slot: done already (minimum interval), nothing more planned.
    run_scheduled(survivor, "collect_slow", scheduler)
    assert runs == ["survivor"] and len(scheduler.added) == 1


def test_two_schedulers_run_each_slot_once(session_factory, monkeypatch):
    """Two APScheduler instances (two workers) firing the same job every 2 s for ~7 s."""
    runs: list[tuple[str, int]] = []
    lock = threading.Lock()

    def body(ctx: JobContext, now: datetime) -> None:
        with lock:
            runs.append((ctx.holder, int(now.timestamp()) // 2))
        time.sleep(0.3)  # both schedulers are inside the slot together

    monkeypatch.setitem(
        jobs.JOBS,
        "tick",
        JobSpec(body, ttl=timedelta(seconds=30), min_interval=timedelta(seconds=1)),
    )
    schedulers = []
    for name in ("worker-a", "worker-b"):
        ctx = JobContext(session_factory, Settings(), None, holder=name)
        scheduler = BackgroundScheduler(timezone=UTC)
        scheduler.add_job(
            run_scheduled,
            trigger=CronTrigger(second="*/2", timezone=UTC),
            args=[ctx, "tick", scheduler],
            id="tick",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=1,
        )
        schedulers.append(scheduler)
    for scheduler in schedulers:
        scheduler.start()
    time.sleep(7.2)
    for scheduler in schedulers:
        scheduler.shutdown(wait=True)
    per_slot = Counter(slot for _, slot in runs)
    assert len(per_slot) >= 2, runs  # slots did run
    assert set(per_slot.values()) == {1}, runs  # and none twice

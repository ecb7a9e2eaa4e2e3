"""governance.leases and the lease around every job: two workers never run one job."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from llmgov.bot import jobs
from llmgov.bot.jobs import JobContext, JobSpec, run_job
from llmgov.bot.settings import Settings
from llmgov.governance.leases import acquire, holder_of, release
from tests.support.clock import FakeClock

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TTL = timedelta(minutes=10)
REPO = Path(__file__).resolve().parents[2]


def test_acquire_release_expiry_and_renewal(session_factory):
    assert acquire(session_factory, "job", "a", TTL, T0)
    assert not acquire(session_factory, "job", "b", TTL, T0 + timedelta(minutes=5))
    assert acquire(session_factory, "job", "a", TTL, T0 + timedelta(minutes=5))  # renewal
    assert holder_of(session_factory, "job", T0 + timedelta(minutes=14)) == "a"
    # a's renewed lease runs to 09:15; after that anyone may take it (a crashed holder).
    assert acquire(session_factory, "job", "b", TTL, T0 + timedelta(minutes=15))
    assert not release(session_factory, "job", "a", T0 + timedelta(minutes=16))  # not a's now
    assert release(session_factory, "job", "b", T0 + timedelta(minutes=16))
    assert holder_of(session_factory, "job", T0 + timedelta(minutes=16)) is None
    assert acquire(session_factory, "job", "a", TTL, T0 + timedelta(minutes=16))


def test_min_interval_stops_a_second_run_of_a_finished_job(session_factory):
    hour = timedelta(minutes=30)
    assert acquire(session_factory, "digest", "a", TTL, T0, hour)
    assert release(session_factory, "digest", "a", T0 + timedelta(seconds=40))
    # b's scheduler fired at the same 09:00 but got here later: a already ran it.
    assert not acquire(session_factory, "digest", "b", TTL, T0 + timedelta(seconds=50), hour)
    assert acquire(session_factory, "digest", "b", TTL, T0 + timedelta(minutes=31), hour)
    # A failed run does not count as a run: it may be retried at once.
    release(session_factory, "digest", "b", T0 + timedelta(minutes=32), completed=False)
    assert acquire(session_factory, "digest", "a", TTL, T0 + timedelta(minutes=33), hour)


def race(session_factory, job_id: str, contenders: int) -> list[str]:
    """`contenders` threads try to take one lease at the same instant; returns the winners."""
    barrier = threading.Barrier(contenders)
    winners: list[str] = []

    def contender(name: str) -> None:
        barrier.wait()
        if acquire(session_factory, job_id, name, TTL, T0):
            winners.append(name)

    threads = [threading.Thread(target=contender, args=(f"w{i}",)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return winners


def test_threads_racing_for_a_lease_exactly_one_wins(session_factory):
    for round_number in range(5):
        winners = race(session_factory, f"race-{round_number}", 6)
        assert len(winners) == 1, (round_number, winners)


RACER = """
import sys, time
from datetime import UTC, datetime, timedelta
from llmgov.models.base import make_engine, make_session_factory
from llmgov.governance.leases import acquire
factory = make_session_factory(make_engine(sys.argv[1]))
start_at = float(sys.argv[3])
time.sleep(max(0.0, start_at - time.time()))
won = acquire(factory, "proc-race", sys.argv[2], timedelta(minutes=5),
              datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
print("won" if won else "lost", flush=True)
"""


def test_processes_racing_for_a_lease_exactly_one_wins(database_url, engine):
    start_at = time.time() + 2.5  # both processes are imported and waiting by then
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, database_url, f"p{i}", str(start_at)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    results = [racer.communicate(timeout=60)[0].strip() for racer in racers]
    assert sorted(results) == ["lost", "lost", "won"]


@pytest.fixture
def slow_job(monkeypatch):
    """A job whose body takes a while and counts its runs."""
    runs: list[str] = []
    started = threading.Event()

    def body(ctx: JobContext, now: datetime) -> str:
        runs.append(ctx.holder)
        started.set()
        time.sleep(0.3)
        return "done"

    monkeypatch.setitem(
        jobs.JOBS, "slow", JobSpec(body, ttl=TTL, min_interval=timedelta(minutes=30))
    )
    return runs, started


def test_two_workers_racing_run_a_job_once(session_factory, slow_job):
    runs, _ = slow_job
    contexts = [
        JobContext(session_factory, Settings(), None, clock=FakeClock(T0), holder=f"worker-{i}")
        for i in range(2)
    ]
    barrier = threading.Barrier(2)
    results = []

    def worker(ctx: JobContext) -> None:
        barrier.wait()
        results.append(run_job(ctx, "slow", T0))

    threads = [threading.Thread(target=worker, args=(ctx,)) for ctx in contexts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.outcome for r in results) == ["skipped", "success"]
    assert len(runs) == 1
    # The loser's scheduler fires again a few seconds later: the job just ran, still skipped.
    late = run_job(contexts[0], "slow", T0 + timedelta(seconds=5))
    assert late.outcome == "skipped" and len(runs) == 1
    # A person asking for a run (`llmgov worker --once`) may run it again.
    assert run_job(contexts[0], "slow", T0 + timedelta(seconds=6), force=True).outcome == "success"
    assert len(runs) == 2

"""The job bodies as plain functions of `now`, on a controlled clock, without a scheduler."""

from __future__ import annotations

import sys
import types
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk import WebClient
from sqlalchemy import select

from llmgov.bot.jobs import (
    JobContext,
    ScheduleConfig,
    check_job,
    collect_job,
    digest_job,
    flush_outbox_job,
    gap_review_job,
    run_job,
)
from llmgov.bot.pacing import Pacer, SlackLimits
from llmgov.bot.settings import Settings
from llmgov.governance.outbox import digest_key, enqueue
from llmgov.governance.owners import zone_of
from llmgov.models.base import transaction
from llmgov.models.governance import OutboxMessage
from llmgov.models.registry import Person, Workload, WorkloadStatus
from tests.support.clock import FakeClock

MONDAY_0800_UTC = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # ISO week 2026-W10


@pytest.fixture
def notify(monkeypatch):
    """A stand-in for bot.notify that records its calls (the real one is tested elsewhere)."""
    calls: list[tuple[str, dict]] = []
    fake = types.ModuleType("llmgov.bot.notify")

    def run_checks(session_factory, settings, now, dry_run=False):
        calls.append(("run_checks", {"now": now, "dry_run": dry_run}))
        return ["finding"]

    def send_digests(session_factory, settings, now, owner=None, dry_run=False, charts=None):
        calls.append(("send_digests", {"now": now, "owner": owner}))
        if owner == "U0FAIL001":
            raise RuntimeError("template error")
        with transaction(session_factory) as session:  # as the real one: the owner's week's key
            tz = session.scalar(select(Person.tz).where(Person.slack_id == owner))
            local = now.astimezone(zone_of(tz)).date()
            enqueue(
                session,
                key=digest_key(owner, local),
                method="chat.postMessage",
                channel=owner,
                payload={"text": "digest"},
                now=now,
            )

    def send_gap_review(session_factory, settings, now, dry_run=False):
        calls.append(("send_gap_review", {"now": now}))

    fake.run_checks, fake.send_digests, fake.send_gap_review = (
        run_checks,
        send_digests,
        send_gap_review,
    )
    monkeypatch.setitem(sys.modules, "llmgov.bot.notify", fake)
    return calls


def context(session_factory, now=MONDAY_0800_UTC, **options) -> JobContext:
    return JobContext(session_factory, Settings(), clock=FakeClock(now), holder="test", **options)


def add_owner(session, slack_id, tz, *, active=True, workloads=1, retired=False):
    person = Person(slack_id=slack_id, tz=tz, active=active, name=slack_id)
    session.add(person)
    session.flush()
    for i in range(workloads):
        session.add(
            Workload(
                slug=f"{slack_id.lower()}-{i}",
                owner_id=person.id,
                status=WorkloadStatus.RETIRED.value if retired else WorkloadStatus.ACTIVE.value,
            )
        )
    return person


def test_digest_goes_out_at_monday_0900_in_each_owners_time_zone(session_factory, notify):
    with transaction(session_factory) as session:
        add_owner(session, "U0LONDON1", "Europe/London")  # UTC+0 in March
        add_owner(session, "U0BERLIN1", "Europe/Berlin")  # UTC+1
        add_owner(session, "U0NEWYRK1", "America/New_York")  # UTC-5 (DST starts 8 March)
        add_owner(session, "U0KOLKAT1", "Asia/Kolkata")  # UTC+5:30
        add_owner(session, "U0NOTZ001", None)  # unknown: UTC
        add_owner(session, "U0GONE001", "Europe/London", active=False)
        add_owner(session, "U0RETIRE1", "Europe/London", retired=True)
        add_owner(session, "U0NOWORK1", "Europe/London", workloads=0)

    sent: dict[str, datetime] = {}
    # Run the hourly job from Sunday 20:00 to Tuesday 12:00 UTC, as the scheduler would.
    hour = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)
    while hour <= datetime(2026, 3, 3, 12, 0, tzinfo=UTC):
        before = len(notify)
        result = digest_job(context(session_factory, hour), hour)
        for _, call in notify[before:]:
            assert call["owner"] not in sent, f"{call['owner']} got a second digest at {hour}"
            sent[call["owner"]] = hour
        assert result["owners"] == len(notify) - before
        hour += timedelta(hours=1)

    assert sent == {
        "U0BERLIN1": datetime(2026, 3, 2, 8, 0, tzinfo=UTC),  # 09:00 Berlin
        "U0LONDON1": datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        "U0NOTZ001": datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        "U0NEWYRK1": datetime(2026, 3, 2, 14, 0, tzinfo=UTC),  # 09:00 New York
        "U0KOLKAT1": datetime(2026, 3, 2, 4, 0, tzinfo=UTC),  # 09:30 Kolkata (first hourly run)
    }
    assert len(notify) == 5  # each exactly once: the week's outbox key marks it served


def test_digest_catches_up_after_a_missed_slot_but_not_the_next_day(session_factory, notify):
    with transaction(session_factory) as session:
        add_owner(session, "U0LONDON1", "Europe/London")
    # The worker was down Monday 09:00-12:00 UTC: the 13:00 run still sends this week's.
    late = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
    assert digest_job(context(session_factory, late), late) == {"owners": 1}
    # An owner added on Tuesday afternoon waits for next Monday (window: 24 hours).
    with transaction(session_factory) as session:
        add_owner(session, "U0NEWBIE1", "Europe/London")
    tuesday = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
    assert digest_job(context(session_factory, tuesday), tuesday) == {"owners": 0}
    next_monday = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
    assert digest_job(context(session_factory, next_monday), next_monday) == {"owners": 2}


def test_digest_day_and_hour_are_configurable(session_factory, notify):
    with transaction(session_factory) as session:
        add_owner(session, "U0LONDON1", "Europe/London")
    config = ScheduleConfig.from_env({"LLMGOV_DIGEST_DAY": "fri", "LLMGOV_DIGEST_HOUR": "16"})
    monday = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert digest_job(context(session_factory, monday, config=config), monday) == {"owners": 0}
    friday = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)
    assert digest_job(context(session_factory, friday, config=config), friday) == {"owners": 1}


def test_one_owners_failure_does_not_cost_the_others_their_digest(session_factory, notify):
    with transaction(session_factory) as session:
        add_owner(session, "U0FAIL001", "Europe/London")
        add_owner(session, "U0LONDON1", "Europe/London")
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    result = run_job(context(session_factory, now), "digest", now)
    assert result.outcome == "failure"
    assert "digest failed for 1 of 2 owners: U0FAIL001" in result.error
    with session_factory() as session:
        keys = set(session.scalars(select(OutboxMessage.idempotency_key)))
    assert keys == {"digest:U0LONDON1:2026-W10"}
    # The lease did not record a completed run, so the next hour retries the failed owner.
    retry = run_job(context(session_factory, now), "digest", now + timedelta(hours=1))
    assert retry.outcome == "failure"  # still failing, but it was attempted again
    assert [c["owner"] for _, c in notify].count("U0FAIL001") == 2


def test_checks_and_gap_review_call_governance_with_now(session_factory, notify):
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert check_job(context(session_factory, now), now) == {"count": 1}
    gap_review_job(context(session_factory, now, dry_run=True), now)
    assert notify == [
        ("run_checks", {"now": now, "dry_run": False}),
        ("send_gap_review", {"now": now}),
    ]


def test_collect_runs_only_configured_sources_then_the_checks(session_factory, notify, monkeypatch):
    collected: list = []
    fake = types.ModuleType("llmgov.collectors.run")
    fake.configured_sources = lambda session_factory: ["bedrock_cloudwatch", "cost_explorer"]
    fake.collect = lambda session_factory, now, sources=None, since=None: collected.append(sources)
    monkeypatch.setitem(sys.modules, "llmgov.collectors.run", fake)
    now = datetime(2026, 3, 2, 9, 10, tzinfo=UTC)
    ctx = context(session_factory, now)
    hourly = collect_job(ctx, now, ("bedrock_cloudwatch", "gpu_cloudwatch", "prometheus"))
    assert collected == [["bedrock_cloudwatch"]]
    assert hourly["checks"] == "success"
    daily = collect_job(ctx, now, ("cost_explorer", "gpu_prices"))
    assert collected[-1] == ["cost_explorer", "gpu_prices"]
    assert daily["checks"] == "success"
    assert [name for name, _ in notify] == ["run_checks", "run_checks"]
    # None of the group configured: no collection, but the checks still run (stale data).
    fake.configured_sources = lambda session_factory: []
    result = collect_job(ctx, now, ("bedrock_cloudwatch",))
    assert result["collected"] == {"skipped": "none of these sources is configured"}
    assert len(collected) == 2 and len(notify) == 3


def test_flush_outbox_job_delivers_and_skips_without_a_client(session_factory, slack_mock):
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with transaction(session_factory) as session:
        enqueue(
            session,
            key="k",
            method="chat.postMessage",
            channel="C0GOV",
            payload={"text": "hello"},
            now=now,
        )
    assert flush_outbox_job(context(session_factory, now), now) == {
        "skipped": "no Slack client (set SLACK_BOT_TOKEN)"
    }
    client = WebClient(token="xoxb-test", base_url=slack_mock.url)
    clock = FakeClock(now)
    ctx = JobContext(
        session_factory,
        Settings(),
        client,
        clock=clock,
        holder="t",
        pacer=Pacer(clock, SlackLimits()),
    )
    report = flush_outbox_job(ctx, now)
    assert report["sent"] == 1
    assert [m["text"] for m in slack_mock.channel_messages("C0GOV")] == ["hello"]


def test_three_weeks_of_hourly_digest_jobs_send_one_digest_per_owner_per_week(
    session_factory, slack_mock
):
    """End to end with the real bot.notify: the hourly job, the outbox, the mock Slack."""
    pytest.importorskip("llmgov.models.arrays", reason="the digest needs the core's arrays module")
    with transaction(session_factory) as session:
        add_owner(session, "U0LONDON1", "Europe/London")
        add_owner(session, "U0TOKYO01", "Asia/Tokyo")
    client = WebClient(token="xoxb-test", base_url=slack_mock.url)
    clock = FakeClock(datetime(2026, 3, 1, 0, 0, tzinfo=UTC))
    ctx = JobContext(
        session_factory,
        Settings(),
        client,
        clock=clock,
        holder="w",
        pacer=Pacer(clock, SlackLimits.unlimited()),
    )
    hour = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    while hour < datetime(2026, 3, 22, 0, 0, tzinfo=UTC):
        assert run_job(ctx, "digest", hour).outcome in ("success", "skipped")
        run_job(ctx, "flush_outbox", hour)
        hour += timedelta(hours=1)
    posts = [c.args for c in slack_mock.calls_to("chat.postMessage")]
    per_owner_week = Counter(
        (args["channel"], args["metadata"]["event_payload"]["key"].rsplit(":", 1)[-1])
        for args in posts
    )
    weeks = {"2026-W10", "2026-W11", "2026-W12"}
    # The first digest goes to the user id; chat.postMessage answers with the DM channel,
    # which later weeks use.
    assert per_owner_week == {
        (f"{'U' if w == '2026-W10' else 'D'}0{who}", w): 1
        for who in ("LONDON1", "TOKYO01")
        for w in weeks
    }

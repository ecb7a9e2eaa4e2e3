"""The early-warning run end to end: CloudWatch (moto) → minute detectors → alert → outbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from sqlalchemy import select

from llmgov.aws.clients import AwsClients, AwsSettings
from llmgov.bot.early_warning import run_early_warning
from llmgov.bot.jobs import JobContext, ScheduleConfig, parse_cadence, run_job
from llmgov.bot.notify import run_checks
from llmgov.bot.scheduler import job_plan
from llmgov.bot.settings import Settings
from llmgov.models.errors import BadInput
from llmgov.models.facts import ApiCallLog
from llmgov.models.governance import Alert, OutboxMessage
from tests.support.bedrock_world import MinutePublisher, seed_registry

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
SETTINGS = Settings(governance_channel="C0GOVERN01")


def minutes(first: datetime, count: int):
    return [first + timedelta(minutes=i) for i in range(count)]


@pytest.fixture
def world(session_factory, mocked_aws):
    seeded = seed_registry(session_factory, T0, workloads=2, calls_per_minute=30)
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    publisher = MinutePublisher(cloudwatch)
    for minute in minutes(T0 - timedelta(minutes=20), 20):
        for model in seeded.models.values():
            publisher.minute(model, minute, calls=30, client_errors=0.3)
    return seeded, publisher


def outbox_rows(session_factory) -> list[OutboxMessage]:
    with session_factory() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def alerts(session_factory) -> list[Alert]:
    with session_factory() as session:
        return list(session.scalars(select(Alert).order_by(Alert.id)))


def test_a_storm_is_raised_once_kept_while_it_lasts_and_resolved_when_it_ends(
    session_factory, world
):
    seeded, publisher = world
    storming = seeded.models["agent-0000"]
    aws = AwsClients(AwsSettings(regions=("us-east-1",)))

    quiet = run_early_warning(session_factory, SETTINGS, T0, aws=aws)
    assert quiet.series == 2 and quiet.messages == 0 and alerts(session_factory) == []
    # requests do not grow with models: one ListMetrics page, one GetMetricData call
    assert quiet.api_calls == {
        "cloudwatch:GetMetricData": 1,
        "cloudwatch:ListMetrics": 1,
        "sts:GetCallerIdentity": 1,  # the account id, once per process
    }
    assert str(quiet.api_cost) == "0.00012"  # 12 metrics x $0.01 / 1,000

    def publish(first, count, **traffic):
        for minute in minutes(first, count):
            publisher.minute(storming, minute, **traffic)
            publisher.minute(seeded.models["agent-0001"], minute, calls=30, client_errors=0.3)

    storm = {"calls": 400, "client_errors": 150, "throttles": 300}
    publish(T0, 5, **storm)
    raised = run_early_warning(session_factory, SETTINGS, T0 + timedelta(minutes=5), aws=aws)
    [alert] = alerts(session_factory)
    assert (alert.kind, alert.status, alert.severity) == ("minute_retry_storm", "open", "critical")
    assert alert.details["workload"] == "agent-0000"
    [post] = outbox_rows(session_factory)
    assert (post.method, post.channel) == ("chat.postMessage", seeded.channel)
    assert f"<@{seeded.owner}>" in post.payload["text"]
    assert "Retry storm since 10:00 UTC" in post.payload["text"]
    assert raised.messages == 1

    # Still storming, a little less: no new message (the alert is updated in place).
    publish(T0 + timedelta(minutes=5), 5, calls=250, client_errors=100, throttles=150)
    lasting = run_early_warning(session_factory, SETTINGS, T0 + timedelta(minutes=10), aws=aws)
    assert lasting.messages == 0 and len(outbox_rows(session_factory)) == 1
    assert alerts(session_factory)[0].status == "open"

    # The hourly checks leave the minute alert alone.
    run_checks(session_factory, SETTINGS, T0 + timedelta(minutes=11))
    assert alerts(session_factory)[0].status == "open"

    # Calm again: an open alert is judged over the last 10 minutes, so one quiet run
    # does not end it; two do.
    publish(T0 + timedelta(minutes=10), 5, calls=30, client_errors=0.3)
    run_early_warning(session_factory, SETTINGS, T0 + timedelta(minutes=15), aws=aws)
    assert alerts(session_factory)[0].status == "open"
    publish(T0 + timedelta(minutes=15), 5, calls=30, client_errors=0.3)
    ended = run_early_warning(session_factory, SETTINGS, T0 + timedelta(minutes=20), aws=aws)
    assert alerts(session_factory)[0].status == "resolved"
    update = outbox_rows(session_factory)[-1]
    assert update.method == "chat.update" and update.payload["ts_from"] == post.idempotency_key
    assert ended.messages == 1
    with session_factory() as session:
        logged = session.scalars(
            select(ApiCallLog).where(ApiCallLog.operation == "GetMetricData")
        ).all()
    assert len(logged) == 5  # every run's requests and cost are on record


def test_minutes_not_yet_published_are_not_read_as_quiet(session_factory, world):
    """Run at 10:05 with data only up to 10:02 (publishing delay): judged on 10:00-10:02."""
    seeded, publisher = world
    model = seeded.models["agent-0000"]
    for minute in minutes(T0, 3):
        publisher.minute(model, minute, calls=400, client_errors=150, throttles=300)
    aws = AwsClients(AwsSettings(regions=("us-east-1",)))
    report = run_early_warning(session_factory, SETTINGS, T0 + timedelta(minutes=5), aws=aws)
    assert report.detail["judged_until"] == (T0 + timedelta(minutes=3)).isoformat()
    assert [a.kind for a in alerts(session_factory)] == ["minute_retry_storm"]


def test_the_job_runs_on_its_cadence_under_a_lease(session_factory, world):
    ctx = JobContext(
        session_factory=session_factory,
        settings=SETTINGS,
        aws=AwsClients(AwsSettings(regions=("us-east-1",))),
    )
    first = run_job(ctx, "early_warning", T0)
    assert first.outcome == "success" and first.detail["series"] == 2
    assert run_job(ctx, "early_warning", T0 + timedelta(seconds=20)).outcome == "skipped"
    assert run_job(ctx, "early_warning", T0 + timedelta(minutes=5)).outcome == "success"
    planned = {job.id: job for job in job_plan(ScheduleConfig())}
    fires = planned["early_warning"].trigger.get_next_fire_time(None, T0 + timedelta(seconds=1))
    assert fires == T0 + timedelta(minutes=5)
    off = {job.id for job in job_plan(ScheduleConfig(early_warning_minutes=0))}
    assert "early_warning" not in off
    assert ScheduleConfig.from_env({"LLMGOV_EARLY_WARNING_MINUTES": "2"}).early_warning_minutes == 2
    with pytest.raises(BadInput, match="divide an hour"):
        parse_cadence("LLMGOV_EARLY_WARNING_MINUTES", "7")

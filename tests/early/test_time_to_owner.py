"""The time-to-owner path, short: moto over HTTP, the mock Slack, the job bodies on a driven
clock. A storm starting just after a run is posted to its owner by the next-but-one run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from slack_sdk import WebClient

from tests.support.bedrock_world import seed_registry
from tests.support.storm_drive import drive

pytestmark = pytest.mark.slow  # whole processes: -m 'not slow' skips them

STORM = datetime(2026, 12, 7, 10, 1, tzinfo=UTC)  # one minute after the 10:00 run


def test_a_storm_reaches_its_owner_through_the_scheduled_jobs(
    session_factory, moto_server, slack_mock
):
    seeded = seed_registry(session_factory, STORM, workloads=3)
    result = drive(
        session_factory,
        seeded,
        boto3.client("cloudwatch", region_name="us-east-1"),
        WebClient(token="xoxb-test", base_url=slack_mock.url),
        slack_mock,
        storm_start=STORM,
        warmup=10,
    )
    # The 10:05 run sees the minutes published 2.5 min late, to 10:01: one storm minute
    # in the three judged already crosses 3x. The post follows within a flush or two.
    assert result.detected_by_run_at == datetime(2026, 12, 7, 10, 5, tzinfo=UTC)
    assert result.posted_at is not None
    assert result.posted_at - result.detected_by_run_at < timedelta(seconds=30)
    [post] = [c for c in slack_mock.calls_to("chat.postMessage") if c.status == 200]
    assert post.args["channel"] == seeded.channel
    assert "Retry storm" in post.args["text"] and f"<@{seeded.owner}>" in post.args["text"]
    assert all(run["outcome"] == "success" for run in result.runs)
    assert result.api_cost > 0

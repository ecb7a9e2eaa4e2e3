"""Drive the production job bodies on a virtual clock through a storm, for the time-to-owner
benchmark and its short end-to-end test.

AWS is a moto server reached over HTTP (`AWS_ENDPOINT_URL`), Slack the mock Web API. The
clock starts `warmup` minutes before the storm and advances in 5-second steps, as the
scheduler would fire: `flush_outbox` every 5 s and `early_warning` on its cron slots
(every `cadence` minutes), each through `bot.jobs.run_job` (leases and all). The wall time
a job takes is added to the clock. Bedrock's per-minute datapoints are put into CloudWatch
`publish_delay` after their minute ends (CloudWatch publishes 1-minute metrics a few
minutes late), so a run sees only what was published by then.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from llmgov.aws.clients import AwsClients, AwsSettings
from llmgov.bot.jobs import JobContext, ScheduleConfig, run_job
from llmgov.bot.pacing import Pacer, SlackLimits
from llmgov.bot.settings import Settings
from tests.support.bedrock_world import MinutePublisher, Seeded
from tests.support.clock import FakeClock

STEP = timedelta(seconds=5)
NORMAL = {"calls": 30.0, "client_errors": 0.3}
STORM = {"calls": 400.0, "client_errors": 150.0, "throttles": 300.0}


@dataclass
class DriveResult:
    storm_start: datetime
    posted_at: datetime | None  # on the virtual clock
    detected_by_run_at: datetime | None
    runs: list[dict[str, Any]] = field(default_factory=list)
    api_cost: float = 0.0

    @property
    def minutes_to_owner(self) -> float | None:
        if self.posted_at is None:
            return None
        return (self.posted_at - self.storm_start).total_seconds() / 60


def drive(
    session_factory: Any,
    seeded: Seeded,
    cloudwatch: Any,
    slack_client: Any,
    slack_mock: Any,
    *,
    storm_start: datetime,
    cadence: int = 5,
    publish_delay: timedelta = timedelta(minutes=2, seconds=30),
    warmup: int = 20,
    give_up_after: timedelta = timedelta(minutes=30),
    storming: str | None = None,
    storm: dict[str, float] | None = None,
) -> DriveResult:
    start = storm_start - timedelta(minutes=warmup)
    clock = FakeClock(start)
    ctx = JobContext(
        session_factory=session_factory,
        settings=Settings(governance_channel="C0GOVERN01"),
        client=slack_client,
        config=ScheduleConfig(early_warning_minutes=cadence),
        clock=clock,
        holder="bench",
        pacer=Pacer(clock, SlackLimits()),
        aws=AwsClients(AwsSettings(regions=("us-east-1",))),
    )
    publisher = MinutePublisher(cloudwatch)
    storming = storming or next(iter(seeded.models))
    minute = start - timedelta(minutes=warmup)  # normal traffic before the clock starts
    result = DriveResult(storm_start=storm_start, posted_at=None, detected_by_run_at=None)
    last_run_slot = None

    def advance_by_wall(started: float) -> None:
        clock.advance(time.perf_counter() - started)

    while clock.now() - storm_start < give_up_after:
        now = clock.now()
        # publish every minute that ended at least publish_delay ago
        while minute + timedelta(minutes=1) + publish_delay <= now:
            for slug, model in seeded.models.items():
                stormy = slug == storming and minute >= storm_start
                traffic = (storm or STORM) if stormy else NORMAL
                publisher.minute(model, minute, **traffic)
            minute += timedelta(minutes=1)
        slot = now.replace(second=0, microsecond=0)
        if slot.minute % cadence == 0 and slot != last_run_slot:
            last_run_slot = slot
            began = time.perf_counter()
            outcome = run_job(ctx, "early_warning", now)
            advance_by_wall(began)
            detail = outcome.detail or {}
            result.runs.append({"at": now, "outcome": outcome.outcome, **detail})
            result.api_cost += float(detail.get("api_cost", 0) or 0)
            if result.detected_by_run_at is None and detail.get("messages"):
                result.detected_by_run_at = now
        began = time.perf_counter()
        run_job(ctx, "flush_outbox", clock.now())
        advance_by_wall(began)
        if result.posted_at is None and _owner_post(slack_mock, seeded):
            result.posted_at = clock.now()
            break
        clock.advance((STEP - (clock.now() - now)).total_seconds())
    return result


def _owner_post(slack_mock: Any, seeded: Seeded) -> bool:
    for call in slack_mock.calls_to("chat.postMessage"):
        if call.status == 200 and f"<@{seeded.owner}>" in str(call.args.get("text", "")):
            return True
    return False

"""Time from a storm's first minute to its owner's Slack message, and what the early
warning costs in AWS requests.

    python benchmarks/time_to_owner.py [--cadence 5] [--workloads 10]

AWS is a moto server on loopback (real AWS HTTP: boto3 through AWS_ENDPOINT_URL), Slack
the mock Web API. The production job bodies run through `bot.jobs.run_job` on a driven
clock (tests/support/storm_drive.py): `early_warning` on its cron slots, `flush_outbox`
every 5 s, the wall time each job takes added to the clock. Bedrock's 1-minute datapoints
appear in CloudWatch 2 or 3 minutes after their minute ends (CloudWatch's publishing delay
for AWS/Bedrock 1-minute metrics). A storm starts at each minute offset from a run slot
(0 = on a slot), as a strong storm (13x attempts, most failing) and a moderate one (3.5x).

Then the AWS cost: one run's requests against moto with 10, 100 and 1,000 models, priced
as CloudWatch does (GetMetricData $0.01 per 1,000 metrics requested; ListMetrics $0.01 per
1,000 requests), times the runs a day at the cadence.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"] = "us-east-1"
for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
    os.environ.pop(name, None)

import boto3  # noqa: E402
import requests  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402
from slack_sdk import WebClient  # noqa: E402

import llmgov.models.migrate  # noqa: E402
from llmgov.aws.clients import ApiCounter  # noqa: E402
from llmgov.collectors.bedrock_minutes import collect_minutes  # noqa: E402
from llmgov.collectors.prices import PriceBook  # noqa: E402
from llmgov.models.base import make_engine, make_session_factory  # noqa: E402
from tests.support.bedrock_world import MinutePublisher, model_for, seed_registry  # noqa: E402
from tests.support.slack_mock import MockSlack  # noqa: E402
from tests.support.storm_drive import STORM, drive  # noqa: E402

LIST_METRICS_PRICE = Decimal("0.00001")  # $0.01 per 1,000 requests
MODERATE = {"calls": 90.0, "client_errors": 30.0, "throttles": 15.0}  # 3.5x attempts
T_SLOT = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def one_scenario(server: str, offset: int, delay: timedelta, storm, cadence, workloads) -> float:
    requests.post(f"{server}/moto-api/reset", timeout=10).raise_for_status()
    engine = make_engine(f"sqlite:///{tempfile.mkdtemp()}/ttO.db")
    llmgov.models.migrate.upgrade(engine)
    session_factory = make_session_factory(engine)
    start = T_SLOT + timedelta(minutes=offset)
    seeded = seed_registry(session_factory, start, workloads=workloads)
    mock = MockSlack().start()
    try:
        result = drive(
            session_factory,
            seeded,
            boto3.client("cloudwatch"),
            WebClient(token="xoxb-bench", base_url=mock.url),
            mock,
            storm_start=start,
            cadence=cadence,
            publish_delay=delay,
            warmup=12,
            storm=storm,
        )
    finally:
        mock.stop()
        engine.dispose()
    return result.minutes_to_owner if result.minutes_to_owner is not None else float("inf")


def cost_per_run(server: str, models: int) -> tuple[dict[str, int], Decimal, int]:
    requests.post(f"{server}/moto-api/reset", timeout=10).raise_for_status()
    cloudwatch = boto3.client("cloudwatch")
    publisher = MinutePublisher(cloudwatch)
    minute = T_SLOT - timedelta(minutes=5)
    for index in range(models):
        publisher.minute(model_for(index + 1), minute, calls=10)
    counter = ApiCounter()
    counted = counter.attach(boto3.client("cloudwatch"))
    series = collect_minutes(
        counted, account="123456789012", region="us-east-1", now=T_SLOT, prices=PriceBook()
    )
    calls = {op: n for (_, op), n in counter.calls.items()}
    listing = Decimal(calls.get("ListMetrics", 0)) * LIST_METRICS_PRICE
    return calls, counter.total_cost() + listing, len(series.model_ids)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cadence", type=int, default=5, help="minutes between runs")
    parser.add_argument("--workloads", type=int, default=10)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("llmgov").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    os.environ["AWS_ENDPOINT_URL"] = url
    try:
        print(
            f"Early warning every {args.cadence} min, {args.workloads} workloads (one model "
            "each), moto server over HTTP, mock Slack; storm starts `offset` minutes after a "
            "run slot."
        )
        worst = 0.0
        for name, storm in (("strong storm (13x)", STORM), ("moderate storm (3.5x)", MODERATE)):
            for delay_minutes in (2, 3):
                delay = timedelta(minutes=delay_minutes)
                figures = [
                    one_scenario(url, offset, delay, storm, args.cadence, args.workloads)
                    for offset in range(args.cadence)
                ]
                worst = max(worst, *figures)
                cells = "  ".join(f"+{o}: {m:4.1f}" for o, m in enumerate(figures))
                print(
                    f"{name:22} publishing delay {delay_minutes} min: minutes to owner by "
                    f"offset {cells}  (median {statistics.median(figures):.1f}, "
                    f"max {max(figures):.1f})"
                )
        print(f"Worst case: {worst:.1f} min from the storm's first minute to the owner's post.")
        runs_per_day = 24 * 60 // args.cadence
        for models in (10, 100, 1000):
            calls, cost, seen = cost_per_run(url, models)
            requests_made = ", ".join(f"{op} {n}" for op, n in sorted(calls.items()))
            print(
                f"{models:5,} models ({seen} found): per run {requests_made}; "
                f"${cost:.5f} a run, ${cost * runs_per_day:.2f} a day, "
                f"${cost * runs_per_day * 30:.0f} a month at {runs_per_day} runs a day"
            )
    finally:
        server.stop()
    return 0 if worst <= 15 else 1


if __name__ == "__main__":
    sys.exit(main())

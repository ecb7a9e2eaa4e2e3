"""A weekly digest round for N owners (default 1,000) through the outbox, against a mock Slack
that enforces Slack's rate limits (429 + Retry-After beyond them). Prints the time the round
takes under those limits, the wall time, the API calls, and that nothing was lost or
posted twice.

    python benchmarks/bench_delivery.py [--owners 1000] [--latency 0.1] [--real-time]

What bounds a round (Slack's documented limits, which the mock enforces and the sender
paces itself to): every DM is its own channel, so chat.postMessage's "1 per second per
channel" does not bind; every post counts against the workspace-wide posting limit
("several hundred a minute"; modelled as 300/min). The first DM to each owner is posted to
the user id (chat.postMessage returns the DM channel id, which is stored in `dm_channels`),
so no `conversations.open` (Tier 3, 50 a minute) is needed: week 1 and later weeks both take
at least N/300 minutes.

By default time is virtual: the sender's pacing sleeps and the mock's rate-limit windows
share one clock that sleeping advances, and each Web API call adds `--latency` seconds
(Slack's own response time, which a sequential sender waits for). "Slack time" is what the
round takes under the limits; "wall" is what this machine spent (HTTP to the mock, the
database). `--real-time` sleeps for real instead (use it with a few dozen owners).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from slack_sdk import WebClient  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

import llmgov.models.migrate  # noqa: E402
from llmgov.bot.outbox import EVENT_TYPE, DeliveryPolicy, DmChannels, drain  # noqa: E402
from llmgov.bot.pacing import Pacer, SlackLimits, SystemClock  # noqa: E402
from llmgov.governance.outbox import digest_key, enqueue  # noqa: E402
from llmgov.models.base import make_engine, make_session_factory, transaction  # noqa: E402
from llmgov.models.governance import OutboxMessage  # noqa: E402
from tests.support.clock import FakeClock  # noqa: E402
from tests.support.slack_mock import MockSlack  # noqa: E402


class SlowClient(WebClient):
    """Every Web API call takes `latency` seconds on the clock (Slack's response time)."""

    def __init__(self, *args: Any, clock: Any, latency: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock
        self._latency = latency

    def api_call(self, api_method: str, **kwargs: Any):  # type: ignore[override]
        self._clock.sleep(self._latency)
        return super().api_call(api_method, **kwargs)


def digest_payload(owner: int) -> dict[str, Any]:
    """A placeholder digest of realistic size: a header, three workloads, a context line."""
    rng = random.Random(owner)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Your LLM spend this week"}}
    ]
    for slug in ("search-summaries", "support-llama", "doc-qa"):
        spent = rng.uniform(50, 5000)
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"*{slug}*: ${spent:,.2f} last week ({rng.uniform(-20, 40):+.0f}%), "
                    f"projected ${spent * 4.3:,.0f} of ${spent * 5:,.0f} budget",
                },
            }
        )
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "llmgov weekly digest"}]}
    )
    return {"text": "Your weekly LLM spend digest", "blocks": blocks}


def run_round(
    session_factory, mock: MockSlack, owners: int, week: tuple[int, int], clock, latency: float
) -> dict[str, Any]:
    with transaction(session_factory) as session:
        for owner in range(owners):
            user = f"U{owner:08d}"
            enqueue(
                session,
                key=digest_key(user, week),
                method="chat.postMessage",
                channel=user,
                payload=digest_payload(owner),
                now=clock.now(),
            )
    calls_before = Counter(c.method for c in mock.state.calls if c.status == 200)
    limited_before = len(mock.rate_limited_calls())
    client = SlowClient(token="xoxb-bench", base_url=mock.url, clock=clock, latency=latency)
    slack_started, wall_started = clock.monotonic(), time.perf_counter()
    report = drain(
        session_factory,
        client,
        timeout_seconds=24 * 3600,
        clock=clock,
        pacer=Pacer(clock, SlackLimits()),
        policy=DeliveryPolicy(),
        dm_channels=DmChannels(),  # a new process: DM channels only from the database
    )
    slack_seconds = clock.monotonic() - slack_started
    wall_seconds = time.perf_counter() - wall_started
    calls = Counter(c.method for c in mock.state.calls if c.status == 200) - calls_before
    posted = Counter(
        (m.get("metadata") or {}).get("event_payload", {}).get("key")
        for m in mock.all_messages()
        if (m.get("metadata") or {}).get("event_type") == EVENT_TYPE
    )
    keys = [digest_key(f"U{owner:08d}", week) for owner in range(owners)]
    with session_factory() as session:
        sent = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.idempotency_key.in_(keys), OutboxMessage.status == "sent")
        )
    return {
        "delivered": sum(1 for key in keys if posted[key] >= 1),
        "marked_sent": sent,
        "lost": sum(1 for key in keys if posted[key] == 0),
        "duplicates": sum(posted[key] - 1 for key in keys if posted[key] > 1),
        "rate_limited": len(mock.rate_limited_calls()) - limited_before,
        "calls": dict(sorted(calls.items())),
        "slack_seconds": slack_seconds,
        "wall_seconds": wall_seconds,
        "pending_left": report.pending_left,
    }


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m {seconds % 60:04.1f}s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--owners", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per Web API call")
    parser.add_argument("--real-time", action="store_true", help="sleep for real")
    parser.add_argument("--database-url", help="default: a new SQLite file")
    args = parser.parse_args()

    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    engine = make_engine(url)
    llmgov.models.migrate.upgrade(engine)
    session_factory = make_session_factory(engine)
    clock = SystemClock() if args.real_time else FakeClock()
    mock = MockSlack(enforce_rate_limits=True, clock=clock.monotonic).start()
    limits = SlackLimits()
    print(
        f"Digest round for {args.owners:,} owners, mock Slack enforcing: chat.postMessage "
        f"1/s per channel; Tier 3 {limits.tier_per_minute['t3']:g}/min (conversations.*); "
        f"sender also keeps posts under {limits.post_workspace_per_minute:g}/min workspace-wide; "
        f"{args.latency:g} s per API call; {'real' if args.real_time else 'virtual'} time."
    )
    try:
        rounds = [
            (
                "week 1: DM channels unknown",
                run_round(session_factory, mock, args.owners, (2026, 10), clock, args.latency),
            ),
            (
                "week 2: DM channels known",
                run_round(session_factory, mock, args.owners, (2026, 11), clock, args.latency),
            ),
        ]
    finally:
        mock.stop()
    for name, result in rounds:
        calls = ", ".join(f"{method} {count:,}" for method, count in result["calls"].items())
        print(
            f"{name:28} delivered {result['delivered']:,}/{args.owners:,}  "
            f"lost {result['lost']}  posted twice {result['duplicates']}  "
            f"429s {result['rate_limited']}  Slack time {minutes(result['slack_seconds'])}  "
            f"wall {result['wall_seconds']:.1f} s\n{'':28} calls: {calls}"
        )
    # N calls at a steady rate need N - 1 intervals.
    opens = (args.owners - 1) / limits.tier_per_minute["t3"] * 60
    posts = (args.owners - 1) / limits.post_workspace_per_minute * 60
    print(
        f"Lower bound from the limits: every week >= {minutes(posts)} (workspace-wide "
        f"posting); opening each DM first (conversations.open, Tier 3) would need "
        f">= {minutes(opens)} in week 1."
    )
    ok = all(
        r["lost"] == 0
        and r["duplicates"] == 0
        and r["pending_left"] == 0
        and r["marked_sent"] == args.owners
        for _, r in rounds
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""A delivering process for the kill tests: drain the outbox of DATABASE (argv[1]) to the
mock Slack whose URL arrives on stdin. It prints "ready" once imported and connected and
starts when the URL arrives, so the parent can start it ahead of time and its random kill
lands during delivery, not during Python's start-up."""

from __future__ import annotations

import sys

from slack_sdk import WebClient

from llmgov.bot.outbox import DeliveryPolicy, drain
from llmgov.bot.pacing import Pacer, SlackLimits
from llmgov.models.base import make_engine, make_session_factory


def main(database_url: str) -> None:
    engine = make_engine(database_url)
    session_factory = make_session_factory(engine)
    with engine.connect():
        pass
    print("ready", flush=True)
    slack_url = sys.stdin.readline().strip()
    if not slack_url:
        return
    client = WebClient(token="xoxb-child", base_url=slack_url, timeout=5)
    drain(
        session_factory,
        client,
        timeout_seconds=60,
        pacer=Pacer(limits=SlackLimits.unlimited()),
        policy=DeliveryPolicy(backoff_base_seconds=0.05),
    )
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])

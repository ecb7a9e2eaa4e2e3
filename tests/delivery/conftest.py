"""Fixtures for the outbox tests: a virtual clock, a Slack client on the mock, helpers."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk import WebClient

from llmgov.bot.outbox import EVENT_TYPE, DeliveryPolicy, DmChannels
from llmgov.bot.pacing import Pacer, SlackLimits
from tests.support.clock import FakeClock

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def client(slack_mock) -> WebClient:
    return WebClient(token="xoxb-test-token", base_url=slack_mock.url, timeout=2)


@pytest.fixture
def sender_options(clock) -> dict[str, Any]:
    """deliver_pending/drain keyword arguments: virtual time, fresh caches, seeded jitter."""
    return {
        "clock": clock,
        "pacer": Pacer(clock, SlackLimits()),
        "policy": DeliveryPolicy(backoff_base_seconds=2.0, max_attempts=4),
        "rng": random.Random(7),
        "dm_channels": DmChannels(),
    }


def keys_posted(mock) -> Counter[str]:
    """How many messages in the mock carry each outbox key (in metadata)."""
    counts: Counter[str] = Counter()
    for message in mock.all_messages():
        meta = message.get("metadata") or {}
        if meta.get("event_type") == EVENT_TYPE:
            counts[meta["event_payload"]["key"]] += 1
    return counts


def files_shared(mock) -> Counter[str]:
    """How many file-share messages carry each file name."""
    counts: Counter[str] = Counter()
    for message in mock.all_messages():
        for shared in message.get("files") or []:
            counts[shared["name"]] += 1
    return counts

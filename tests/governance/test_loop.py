"""The governance loop over 8 simulated weeks on a controlled clock, through bot.notify, the
outbox sender and the mock Slack Web API (contract-checked on every call).

Every morning yesterday's bill arrives and the checks run; every Monday the digests and
the gap review go out (and are asked for again later that week, to prove they are sent
once). The story: a one-day spike on `search`; an unowned workload whose spend grows until
it is critical, then is claimed; `helpdesk` ramps past its budget; Cy leaves the company;
the CloudWatch collector goes quiet for two days.

Must show: every alert posted once, updated in place, resolved when its condition clears;
every owner gets exactly one digest a week; deactivated owners appear in the gap review.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from slack_sdk import WebClient
from sqlalchemy import select

from llmgov.bot.notify import post_key, run_checks, send_digests, send_gap_review
from llmgov.bot.outbox import EVENT_TYPE, DeliveryPolicy, DmChannels, drain
from llmgov.bot.owner_refresh import refresh_owners
from llmgov.bot.pacing import Pacer, SlackLimits
from llmgov.bot.settings import Settings
from llmgov.collectors.status import record_success
from llmgov.governance import ownership
from llmgov.models.base import transaction
from llmgov.models.governance import Alert
from llmgov.models.registry import Workload
from tests.support.clock import FakeClock

START = date(2026, 9, 7)  # a Monday
WEEKS = 8
GOVERN = "C0GOVERN01"
SEARCH = "C0SEARCH01"
SETTINGS = Settings(governance_channel=GOVERN)
SPIKE_DAY = date(2026, 9, 23)
CY_LEAVES = date(2026, 9, 28)  # Monday of week 4, before the digests
CLAIMED = date(2026, 10, 12)  # Monday of week 6
QUIET = (date(2026, 10, 20), date(2026, 10, 21))  # CloudWatch delivers nothing


def spend(slug: str, day: date) -> float:
    """The bill of one workload on one day: the story in numbers."""
    if slug == "search":
        return 400.0 if day == SPIKE_DAY else 80.0
    if slug == "helpdesk":
        return 60.0 if day >= date(2026, 10, 5) else 20.0
    if slug == "mystery":
        return 60.0 if day >= date(2026, 9, 21) else 25.0
    return 10.0  # docs-qa


@pytest.fixture
def loop(session_factory, slack_mock):
    from tests.governance.conftest import Registry

    with transaction(session_factory) as session:
        registry = Registry(session)
        search_team = registry.team("search", SEARCH)
        support = registry.team("support")  # no channel: the governance channel
        ana = registry.person("U0ANA0001", "Ana", tz="Europe/London")
        bob = registry.person("U0BOB0002", "Bob", tz="America/New_York")
        cy = registry.person("U0CY00003", "Cy")
        registry.workload("search", owner=ana, team=search_team, budget_monthly=Decimal(3000))
        registry.workload("helpdesk", owner=bob, team=support, budget_monthly=Decimal(1000))
        registry.workload("docs-qa", owner=cy, team=support, budget_monthly=Decimal(500))
        registry.workload(
            "mystery", status="discovered", discovered_from="model=llama|acct=1", exit_strategy=None
        )
        workloads = {w.slug: w for w in session.scalars(select(Workload))}
        for slug, workload in workloads.items():
            day = START - timedelta(days=68)  # history; the first morning brings START - 1
            while day < START - timedelta(days=1):
                registry.daily_cost(workload, day, spend(slug, day))
                day += timedelta(days=1)
    for user, name in (("U0ANA0001", "Ana"), ("U0BOB0002", "Bob"), ("U0CY00003", "Cy")):
        slack_mock.add_user(user, real_name=name)
    client = WebClient(token="xoxb-test", base_url=slack_mock.url, timeout=5)
    return session_factory, client, slack_mock


def deliver(session_factory, client, now: datetime, dms: DmChannels) -> None:
    clock = FakeClock(now)
    report = drain(
        session_factory,
        client,
        now=now,
        clock=clock,
        pacer=Pacer(clock, SlackLimits()),
        policy=DeliveryPolicy(),
        rng=random.Random(3),
        dm_channels=dms,
        timeout_seconds=3600,
    )
    assert report.failed == 0 and report.pending_left == 0, report.as_dict()


def morning(session_factory, day: date) -> None:
    """Yesterday's bill arrives; the collectors say they ran."""
    at = datetime.combine(day, time(6), tzinfo=UTC)
    with transaction(session_factory) as session:
        from tests.governance.conftest import Registry

        registry = Registry.__new__(Registry)
        registry.session = session
        for workload in session.scalars(select(Workload)):
            registry.daily_cost(
                workload, day - timedelta(days=1), spend(workload.slug, day - timedelta(days=1))
            )
        record_success(session, "cost_explorer", "*", at, 4)
        if day not in QUIET:
            record_success(session, "bedrock_cloudwatch", "111122223333/us-east-1", at, 96)


def simulate(session_factory, client, slack_mock):
    dms = DmChannels()
    for offset in range(WEEKS * 7):
        day = START + timedelta(days=offset)
        morning(session_factory, day)
        if day == CY_LEAVES:  # the daily owner refresh learns Cy's account was deactivated
            slack_mock.state.users["U0CY00003"]["deleted"] = True
            refresh_owners(
                session_factory,
                client,
                datetime.combine(day, time(5), tzinfo=UTC),
                clock=FakeClock(datetime.combine(day, time(5), tzinfo=UTC)),
            )
        if day == CLAIMED:
            with transaction(session_factory) as session:
                ownership.claim(session, "U0ANA0001", "mystery", admins=())
        checks_at = datetime.combine(day, time(6, 30), tzinfo=UTC)
        run_checks(session_factory, SETTINGS, checks_at)
        deliver(session_factory, client, checks_at, dms)
        if day.weekday() == 0:
            for hour in (9, 15):  # the 15:00 run finds everything already sent
                now = datetime.combine(day, time(hour), tzinfo=UTC)
                send_digests(session_factory, SETTINGS, now)
                send_gap_review(session_factory, SETTINGS, now)
                deliver(session_factory, client, now, dms)
        if day.weekday() == 2:  # a mid-week run from the CLI, say
            now = datetime.combine(day, time(12), tzinfo=UTC)
            assert send_digests(session_factory, SETTINGS, now).messages == []
            assert send_gap_review(session_factory, SETTINGS, now).already_sent


def key_of(message) -> str | None:
    meta = message.get("metadata") or {}
    return (
        (meta.get("event_payload") or {}).get("key")
        if meta.get("event_type") == EVENT_TYPE
        else None
    )


def test_eight_weeks_of_governance(loop):
    session_factory, client, slack_mock = loop
    simulate(session_factory, client, slack_mock)

    messages = slack_mock.all_messages()
    top_level = [m for m in messages if not m.get("thread_ts")]
    keys = Counter(key_of(m) for m in messages if key_of(m))
    assert max(keys.values()) == 1, [k for k, n in keys.items() if n > 1]  # nothing twice

    with session_factory() as session:
        alerts = list(session.scalars(select(Alert)))
        by_kind = defaultdict(list)
        for alert in alerts:
            by_kind[(alert.kind, (alert.details or {}).get("workload"))].append(alert)
        posted = {post_key(a): a for a in alerts if a.message_ts}

    # ---- alerts: posted once, updated in place, resolved when the condition clears
    alert_posts = {key_of(m): m for m in top_level if (key_of(m) or "").startswith("alert:")}
    assert alert_posts, "the story must produce alerts"
    assert all(keys[key] == 1 for key in alert_posts)
    updates = slack_mock.calls_to("chat.update")
    top_ts = {m["ts"] for m in top_level}
    assert updates and all(call.args["ts"] in top_ts for call in updates)  # in place, always
    for alert in posted.values():
        message = alert_posts[post_key(alert)]
        assert message["ts"] == alert.message_ts
        if alert.status == "resolved":
            assert message["text"].startswith("[resolved]"), alert.kind
        else:
            assert not message["text"].startswith("[resolved]"), alert.kind

    [spike] = by_kind[("spend_anomaly", "search")]
    assert spike.status == "resolved" and spike.severity == "critical"
    assert spike.first_seen_at.date() == SPIKE_DAY + timedelta(days=1)
    assert spike.resolved_at.date() == SPIKE_DAY + timedelta(days=2)

    [unowned] = by_kind[("unowned_workload", "mystery")]
    assert unowned.status == "resolved" and unowned.resolved_at.date() == CLAIMED
    replies = [m for m in messages if m.get("thread_ts") == unowned.message_ts]
    assert len(replies) == 1 and "this is now *critical* (was warning)" in replies[0]["text"]

    [stale] = by_kind[("stale_data", None)]
    assert stale.status == "resolved" and stale.first_seen_at.date() == QUIET[1]

    [left] = by_kind[("owner_inactive", "docs-qa")]
    assert left.status == "open" and left.channel_id == GOVERN
    assert left.first_seen_at.date() == CY_LEAVES

    overrun = by_kind[("budget_exceeded", "helpdesk")]
    assert overrun and overrun[0].severity == "critical"

    # ---- digests: exactly one a week for every active owner, each with its chart
    digests = Counter()
    for message in top_level:
        key = key_of(message) or ""
        if key.startswith("digest:") and not key.endswith(":chart"):
            owner, week = key.split(":")[1:3]
            digests[owner] += 1
            assert message["channel"] == "D" + owner[1:]
    assert digests == {"U0ANA0001": WEEKS, "U0BOB0002": WEEKS, "U0CY00003": 3}
    charts = slack_mock.state.uploads.get("completed", {})
    assert len(charts) == sum(digests.values())

    # ---- the gap review: weekly, and Cy appears once gone
    reviews = [m for m in top_level if (key_of(m) or "").startswith("gaps:")]
    assert len(reviews) == WEEKS and all(m["channel"] == GOVERN for m in reviews)
    for week, review in enumerate(sorted(reviews, key=lambda m: float(m["ts"]))):
        text = " ".join(
            b.get("text", {}).get("text", "") for b in review["blocks"] if b["type"] == "section"
        )
        assert ("Cy (left)" in text) == (week >= 3), week
        assert ("discovered, not registered" in text) == (week < 5), week

"""llmgov.bot.notify's alert flow with injected findings: what is enqueued, where it goes, and what
the mock Slack ends up showing once the outbox sender has delivered it."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from slack_sdk import WebClient
from sqlalchemy import func, select

import llmgov.bot.notify as notify
from llmgov.bot.outbox import DeliveryPolicy, DmChannels, deliver_pending
from llmgov.bot.pacing import Pacer, SlackLimits
from llmgov.bot.settings import Settings
from llmgov.governance.findings import Finding
from llmgov.models.errors import BadInput
from llmgov.models.governance import Alert, OutboxMessage
from tests.support.clock import FakeClock

T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)
SETTINGS = Settings(governance_channel="C0GOVERN1")


@pytest.fixture
def world(session_factory):
    from tests.governance.conftest import Registry

    with session_factory() as session:
        registry = Registry(session)
        ana = registry.person("U0ANA0001", "Ana")
        search = registry.team("search", "C0SEARCH1")
        support = registry.team("support")  # no channel of its own
        registry.workload("search", owner=ana, team=search)
        registry.workload("helpdesk", owner=ana, team=support)
        session.commit()


@pytest.fixture
def findings(monkeypatch):
    """What the checks "find" on the next run (the checks themselves are tested elsewhere)."""
    current: list[Finding] = []
    monkeypatch.setattr(notify, "evaluate", lambda session, as_of, thresholds: list(current))
    return current


def make(kind="spend_anomaly", severity="warning", workload="search", amount="50"):
    return Finding(
        kind=kind,
        severity=severity,
        workload=workload,
        owner="U0ANA0001",
        team=None,
        amount=Decimal(amount),
        currency="USD",
        message=f"{workload} {kind} {severity}",
        details={},
        fingerprint=f"fp:{kind}:{workload}",
    )


def counts(session_factory):
    with session_factory() as session:
        return (
            session.scalar(select(func.count()).select_from(Alert)),
            session.scalar(select(func.count()).select_from(OutboxMessage)),
        )


def test_dry_run_shows_the_post_and_writes_nothing(session_factory, world, findings):
    findings.append(make())
    run = notify.run_checks(session_factory, SETTINGS, T0, dry_run=True)
    assert [c["action"] for c in run.changes] == ["new"]
    [message] = run.messages
    assert (message.method, message.channel) == ("chat.postMessage", "C0SEARCH1")
    assert "search spend_anomaly warning" in message.preview()  # snake_case stays as typed
    assert counts(session_factory) == (0, 0)


def test_routing_team_channel_else_governance_channel(session_factory, world, findings):
    findings.extend(
        [make(workload="search"), make(workload="helpdesk"), make("stale_data", workload=None)]
    )
    run = notify.run_checks(session_factory, SETTINGS, T0)
    channels = sorted(m.channel for m in run.messages)
    assert channels == ["C0GOVERN1", "C0GOVERN1", "C0SEARCH1"]
    assert counts(session_factory) == (3, 3)


def test_no_channel_at_all_is_refused_and_nothing_half_written(session_factory, world, findings):
    findings.append(make(workload="helpdesk"))
    with pytest.raises(BadInput, match="set LLMGOV_CHANNEL"):
        notify.run_checks(session_factory, Settings(), T0)
    assert counts(session_factory) == (0, 0)


def test_info_is_kept_quiet_until_it_rises(session_factory, world, findings):
    findings.append(make("missing_budget", "info"))
    assert notify.run_checks(session_factory, SETTINGS, T0).messages == []
    assert counts(session_factory) == (1, 0)
    findings[:] = [make("missing_budget", "warning")]
    run = notify.run_checks(session_factory, SETTINGS, T0 + timedelta(hours=1))
    assert [(m.method, m.channel) for m in run.messages] == [("chat.postMessage", "C0SEARCH1")]
    findings.clear()  # resolves; its post is updated to say so
    run = notify.run_checks(session_factory, SETTINGS, T0 + timedelta(hours=2))
    assert [m.method for m in run.messages] == ["chat.update"]


def test_post_once_then_thread_and_update_in_place_then_resolve(
    session_factory, world, findings, slack_mock
):
    client = WebClient(token="xoxb-test", base_url=slack_mock.url, timeout=2)
    clock = FakeClock(T0)
    options = dict(
        clock=clock,
        pacer=Pacer(clock, SlackLimits()),
        policy=DeliveryPolicy(),
        rng=random.Random(1),
        dm_channels=DmChannels(),
    )

    def step(hours: int):
        now = T0 + timedelta(hours=hours)
        run = notify.run_checks(session_factory, SETTINGS, now)
        deliver_pending(session_factory, client, now=now, **options)
        return run

    findings.append(make(severity="warning"))
    step(0)
    step(1)  # the same condition: nothing new
    [post] = slack_mock.channel_messages("C0SEARCH1")
    assert "<@U0ANA0001>" in post["text"] and post["thread_ts"] is None

    findings[:] = [make(severity="critical")]
    run = step(2)
    assert [m.method for m in run.messages] == ["chat.postMessage", "chat.update"]
    messages = slack_mock.channel_messages("C0SEARCH1")
    assert len(messages) == 2  # the original, plus one reply in its thread
    assert messages[1]["thread_ts"] == post["ts"]
    assert "this is now *critical* (was warning)" in messages[1]["text"]
    assert messages[0]["text"].startswith("[critical]")  # the original, updated in place

    with session_factory() as session:
        alert = session.scalar(select(Alert))
        assert (alert.channel_id, alert.message_ts) == ("C0SEARCH1", post["ts"])

    findings.clear()
    step(3)
    messages = slack_mock.channel_messages("C0SEARCH1")
    assert len(messages) == 2  # no new post: the original now says resolved
    assert messages[0]["text"].startswith("[resolved]")
    assert "Resolved: Unusual spend" in messages[0]["blocks"][0]["text"]["text"]
    assert len(slack_mock.calls_to("chat.update")) == 2
    assert {c.args["ts"] for c in slack_mock.calls_to("chat.update")} == {post["ts"]}


def test_runs_summarise_themselves_for_the_scheduler(session_factory, world, findings):
    findings.extend([make(), make("stale_data", workload=None)])
    run = notify.run_checks(session_factory, SETTINGS, T0, dry_run=True)
    assert run.as_dict() == {"findings": 2, "alerts": {"new": 2}, "messages": 2, "dry_run": True}

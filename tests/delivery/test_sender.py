"""bot.outbox: delivery through the mock Slack Web API, with faults, on a virtual clock."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from slack_sdk import WebClient
from sqlalchemy import select

from llmgov.bot.outbox import (
    DeliveryPolicy,
    DmChannels,
    deliver_pending,
    drain,
    unique_filename,
    without_sdk_retries,
)
from llmgov.bot.pacing import Pacer, SlackLimits
from llmgov.governance.outbox import enqueue, file_payload, replay_failed
from llmgov.models.base import transaction
from llmgov.models.governance import Alert, OutboxMessage
from tests.delivery.conftest import T0, files_shared, keys_posted
from tests.support.clock import FakeClock
from tests.support.slack_mock import Fault


def add(session_factory, key, channel="C0GOV", method="chat.postMessage", **payload):
    with transaction(session_factory) as session:
        return enqueue(
            session,
            key=key,
            method=method,
            channel=channel,
            payload=payload or {"text": key},
            now=T0,
        )


def rows(session_factory) -> dict[str, OutboxMessage]:
    with session_factory() as session:
        return {r.idempotency_key: r for r in session.scalars(select(OutboxMessage))}


def test_sends_marks_sent_and_carries_the_key_in_metadata(
    session_factory, slack_mock, client, sender_options
):
    add(session_factory, "alert:1", text="Budget exceeded")
    report = deliver_pending(session_factory, client, now=T0, **sender_options)
    assert report.sent == 1
    [message] = slack_mock.channel_messages("C0GOV")
    assert message["text"] == "Budget exceeded"
    assert message["metadata"] == {
        "event_type": "llmgov_outbox",
        "event_payload": {"key": "alert:1"},
    }
    row = rows(session_factory)["alert:1"]
    assert (row.status, row.sent_channel, row.sent_ts, row.attempts) == (
        "sent",
        "C0GOV",
        message["ts"],
        1,
    )
    # Sent rows are never sent again.
    assert deliver_pending(session_factory, client, now=T0, **sender_options).sent == 0
    assert len(slack_mock.calls_to("chat.postMessage")) == 1


def test_429_honours_retry_after_without_blocking_other_channels(
    session_factory, slack_mock, client, sender_options, clock
):
    add(session_factory, "a1", channel="C0AAA")
    add(session_factory, "a2", channel="C0AAA")
    add(session_factory, "b1", channel="C0BBB")
    slack_mock.fail_next("chat.postMessage", Fault(429, retry_after=30))
    first = deliver_pending(session_factory, client, now=T0, **sender_options)
    # a1 was refused: its channel waits (a2 stays behind it, in order); C0BBB went out.
    assert (first.rate_limited, first.sent) == (1, 1)
    state = rows(session_factory)
    assert state["b1"].status == "sent"
    assert state["a1"].status == "pending" and state["a2"].status == "pending"
    assert state["a1"].attempts == 0  # a 429 costs no attempt
    assert state["a1"].next_attempt_at == T0 + timedelta(seconds=30)
    assert "retry after 30s" in state["a1"].last_error

    too_early = deliver_pending(
        session_factory, client, now=T0 + timedelta(seconds=29), **sender_options
    )
    assert too_early.sent == 0
    later = deliver_pending(
        session_factory, client, now=T0 + timedelta(seconds=30), **sender_options
    )
    assert later.sent == 2
    assert [m["text"] for m in slack_mock.channel_messages("C0AAA")] == ["a1", "a2"]


def test_5xx_backs_off_exponentially_then_fails_and_replays(
    session_factory, slack_mock, client, sender_options
):
    add(session_factory, "k")
    slack_mock.fail_next("chat.postMessage", Fault(500), times=4)
    now = T0
    delays = []
    for _ in range(4):
        report = deliver_pending(session_factory, client, now=now, **sender_options)
        row = rows(session_factory)["k"]
        if row.status == "failed":
            break
        assert report.retried == 1
        delays.append((row.next_attempt_at - now).total_seconds())
        now = row.next_attempt_at
    # base 2 s, doubling, half of it jittered: [1,2], [2,4], [4,8]
    assert len(delays) == 3
    for attempt, delay in enumerate(delays, start=1):
        ceiling = 2.0 * 2 ** (attempt - 1)
        assert ceiling / 2 <= delay <= ceiling
    assert row.status == "failed" and row.attempts == 4
    assert "gave up after 4 attempts" in row.last_error and "HTTP 500" in row.last_error
    assert slack_mock.channel_messages("C0GOV") == []

    with transaction(session_factory) as session:
        assert replay_failed(session, now=now) == 1
    assert deliver_pending(session_factory, client, now=now, **sender_options).sent == 1
    assert keys_posted(slack_mock) == {"k": 1}


def test_timeout_after_slack_posted_is_found_not_posted_twice(
    session_factory, slack_mock, sender_options
):
    """The client gives up, Slack posts anyway: the retry finds the copy by its metadata."""
    impatient = WebClient(token="xoxb-test-token", base_url=slack_mock.url, timeout=0.3)
    add(session_factory, "slow")
    slack_mock.fail_next("chat.postMessage", Fault(200, delay=0.8))
    first = deliver_pending(session_factory, impatient, now=T0, **sender_options)
    assert first.retried == 1
    slack_mock.wait_for("chat.postMessage", 1)  # Slack finished posting after we gave up
    row = rows(session_factory)["slow"]
    assert "TimeoutError" in row.last_error or "timed out" in row.last_error

    second = deliver_pending(session_factory, impatient, now=row.next_attempt_at, **sender_options)
    assert second.already_sent == 1 and second.sent == 0
    assert second.calls["conversations.history"] == 1
    assert "chat.postMessage" not in second.calls
    assert keys_posted(slack_mock) == {"slow": 1}
    row = rows(session_factory)["slow"]
    assert row.status == "sent"
    assert row.sent_ts == slack_mock.channel_messages("C0GOV")[0]["ts"]


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the sender catches it."""


class CrashAfterPost:
    """A client whose chat.postMessage reaches Slack, then the process dies before marking."""

    def __init__(self, client: WebClient) -> None:
        self._client = without_sdk_retries(client)
        self.retry_handlers: list = []

    def __getattr__(self, name):
        return getattr(self._client, name)

    def chat_postMessage(self, **kwargs):
        self._client.chat_postMessage(**kwargs)
        raise Crash()


def test_crash_between_sending_and_marking_does_not_post_twice(
    session_factory, slack_mock, client, sender_options
):
    add(session_factory, "k1", channel="U0ANA0001")  # a DM: the D channel must be found again
    with pytest.raises(Crash):
        deliver_pending(session_factory, CrashAfterPost(client), now=T0, **sender_options)
    row = rows(session_factory)["k1"]
    assert (row.status, row.attempts) == ("pending", 1)  # claimed, never marked
    # The claim hides the row from other senders until it lapses.
    restart = {**sender_options, "dm_channels": DmChannels()}
    assert deliver_pending(session_factory, client, now=T0, **restart).sent == 0
    after = T0 + timedelta(seconds=DeliveryPolicy().claim_seconds)
    report = deliver_pending(session_factory, client, now=after, **restart)
    assert report.already_sent == 1 and report.sent == 0
    assert keys_posted(slack_mock) == {"k1": 1}
    row = rows(session_factory)["k1"]
    assert (row.status, row.sent_channel) == ("sent", "D0ANA0001")


def test_final_errors_fail_at_once_with_advice(session_factory, slack_mock, client, sender_options):
    add(session_factory, "k")
    slack_mock.fail_next("chat.postMessage", Fault(404, error="channel_not_found"))
    report = deliver_pending(session_factory, client, now=T0, **sender_options)
    assert report.failed == 1
    row = rows(session_factory)["k"]
    assert row.status == "failed" and row.attempts == 1
    assert "channel_not_found" in row.last_error and "check the channel id" in row.last_error


def test_not_in_channel_joins_the_public_channel_and_posts(
    session_factory, slack_mock, client, sender_options
):
    add(session_factory, "k")
    slack_mock.fail_next("chat.postMessage", Fault(403, error="not_in_channel"))
    report = deliver_pending(session_factory, client, now=T0, **sender_options)
    assert report.sent == 1
    assert [c.args["channel"] for c in slack_mock.calls_to("conversations.join")] == ["C0GOV"]
    assert keys_posted(slack_mock) == {"k": 1}


def test_dm_is_posted_to_the_user_id_and_its_channel_remembered(
    session_factory, slack_mock, client, sender_options
):
    add(session_factory, "d1", channel="U0BOB0001")
    add(session_factory, "d2", channel="U0BOB0001")
    deliver_pending(session_factory, client, now=T0, **sender_options)
    assert slack_mock.calls_to("conversations.open") == []
    # The first post names the user; the second the DM channel the first one returned.
    assert [c.args["channel"] for c in slack_mock.calls_to("chat.postMessage")] == [
        "U0BOB0001",
        "D0BOB0001",
    ]
    # A new process (empty memory cache) finds the D channel in the database, not via Slack.
    add(session_factory, "d3", channel="U0BOB0001")
    restart = {**sender_options, "dm_channels": DmChannels()}
    deliver_pending(session_factory, client, now=T0, **restart)
    assert slack_mock.calls_to("conversations.open") == []
    assert slack_mock.calls_to("chat.postMessage")[-1].args["channel"] == "D0BOB0001"
    assert [m["text"] for m in slack_mock.channel_messages("D0BOB0001")] == ["d1", "d2", "d3"]


def test_update_and_thread_reply_wait_for_the_message_they_refer_to(
    session_factory, slack_mock, client, sender_options
):
    with transaction(session_factory) as session:
        alert = Alert(fingerprint="f1", kind="budget_exceeded", severity="warning", message="m")
        session.add(alert)
        session.flush()
        alert_id = alert.id
        enqueue(
            session,
            key="alert:1:post",
            method="chat.postMessage",
            channel="C0GOV",
            payload={"text": "open"},
            alert_id=alert_id,
            now=T0,
        )
        enqueue(
            session,
            key="alert:1:resolved",
            method="chat.update",
            channel="C0GOV",
            payload={"ts_from": "alert:1:post", "text": "resolved"},
            now=T0,
        )
        enqueue(
            session,
            key="alert:1:note",
            method="chat.postMessage",
            channel="C0GOV",
            payload={"thread_ts_from": "alert:1:post", "text": "cleared"},
            now=T0,
        )
    slack_mock.fail_next("chat.postMessage", Fault(429, retry_after=5))
    first = deliver_pending(session_factory, client, now=T0, **sender_options)
    assert first.rate_limited == 1 and first.sent == 0  # the others wait behind it
    deliver_pending(session_factory, client, now=T0 + timedelta(seconds=5), **sender_options)
    [parent, reply] = slack_mock.channel_messages("C0GOV")
    assert parent["text"] == "resolved"  # updated in place
    assert reply["thread_ts"] == parent["ts"]
    state = rows(session_factory)
    assert state["alert:1:resolved"].sent_ts == parent["ts"]
    with session_factory() as session:
        alert = session.get(Alert, alert_id)
        assert (alert.channel_id, alert.message_ts) == ("C0GOV", parent["ts"])


def test_a_reference_to_a_failed_message_fails_too(
    session_factory, slack_mock, client, sender_options
):
    add(session_factory, "post")
    add(session_factory, "update", method="chat.update", ts_from="post", text="x")
    slack_mock.fail_next("chat.postMessage", Fault(400, error="invalid_blocks"))
    report = deliver_pending(session_factory, client, now=T0, **sender_options)
    assert report.failed == 2
    assert rows(session_factory)["update"].last_error == "ts_from 'post' failed"


def test_thread_reply_interrupted_is_found_in_the_thread(
    session_factory, slack_mock, client, sender_options
):
    add(session_factory, "parent")
    deliver_pending(session_factory, client, now=T0, **sender_options)
    add(session_factory, "reply", thread_ts_from="parent", text="in thread")
    with pytest.raises(Crash):
        deliver_pending(session_factory, CrashAfterPost(client), now=T0, **sender_options)
    after = T0 + timedelta(seconds=DeliveryPolicy().claim_seconds)
    report = deliver_pending(session_factory, client, now=after, **sender_options)
    assert report.already_sent == 1
    assert report.calls["conversations.replies"] == 1
    assert keys_posted(slack_mock) == {"parent": 1, "reply": 1}


def test_file_upload_to_a_dm_and_its_duplicate_check(
    session_factory, slack_mock, client, sender_options
):
    with transaction(session_factory) as session:
        enqueue(
            session,
            key="digest:U0ANA0001:2026-W10:chart",
            method="files.upload_v2",
            channel="U0ANA0001",
            payload=file_payload("spend.png", b"\x89PNG fake", title="Spend"),
            now=T0,
        )
    # The upload completes in Slack but the answer is lost (a timeout on the last step).
    impatient = WebClient(token="xoxb-test-token", base_url=slack_mock.url, timeout=0.3)
    slack_mock.fail_next("files.completeUploadExternal", Fault(200, delay=0.8))
    first = deliver_pending(session_factory, impatient, now=T0, **sender_options)
    assert first.retried == 1
    slack_mock.wait_for("files.completeUploadExternal", 1)
    row = rows(session_factory)["digest:U0ANA0001:2026-W10:chart"]
    second = deliver_pending(session_factory, client, now=row.next_attempt_at, **sender_options)
    assert second.already_sent == 1
    name = unique_filename("spend.png", "digest:U0ANA0001:2026-W10:chart")
    assert files_shared(slack_mock) == {name: 1}
    row = rows(session_factory)["digest:U0ANA0001:2026-W10:chart"]
    assert row.status == "sent" and row.sent_channel == "D0ANA0001"
    assert row.sent_ts.startswith("F")  # a file's id: its share ts is assigned by Slack later


def test_pacing_keeps_one_post_per_second_per_channel_under_an_enforcing_slack(
    session_factory, client, sender_options, clock
):
    from tests.support.slack_mock import MockSlack

    strict = MockSlack(enforce_rate_limits=True, clock=clock.monotonic).start()
    try:
        paced = WebClient(token="xoxb-test-token", base_url=strict.url)
        for i in range(5):
            add(session_factory, f"a{i}", channel="C0AAA")
            add(session_factory, f"b{i}", channel="C0BBB")
        report = drain(session_factory, paced, now=T0, **sender_options)
        assert report.sent == 10 and report.rate_limited == 0
        assert strict.rate_limited_calls() == []
        # Two channels interleave: 5 posts each at 1/s take ~4 s, not ~9 s.
        assert 4.0 <= report.seconds < 5.0
        assert [m["text"] for m in strict.channel_messages("C0AAA")] == [f"a{i}" for i in range(5)]
    finally:
        strict.stop()


def test_without_pacing_the_enforcing_mock_answers_429_and_nothing_is_lost(
    session_factory, client, clock
):
    from tests.support.slack_mock import MockSlack

    strict = MockSlack(enforce_rate_limits=True, clock=clock.monotonic).start()
    try:
        fast = WebClient(token="xoxb-test-token", base_url=strict.url)
        for i in range(4):
            add(session_factory, f"a{i}", channel="C0AAA")
        report = drain(
            session_factory,
            fast,
            now=T0,
            clock=clock,
            pacer=Pacer(clock, SlackLimits.unlimited()),
            dm_channels=DmChannels(),
        )
        assert report.rate_limited >= 1  # the mock enforced the limit...
        assert len(strict.rate_limited_calls("chat.postMessage")) == report.rate_limited
        assert report.sent == 4 and report.pending_left == 0  # ...and Retry-After was honoured
        assert keys_posted(strict) == {f"a{i}": 1 for i in range(4)}
    finally:
        strict.stop()


def test_two_senders_at_once_post_each_message_once(session_factory, slack_mock):
    """Two processes flushing the same outbox (web + worker) must not both send a row."""
    for i in range(30):
        add(session_factory, f"k{i}", channel=f"C0CH{i % 6}")
    real = WebClient(token="xoxb-test-token", base_url=slack_mock.url)
    reports = []

    def run() -> None:
        reports.append(
            deliver_pending(
                session_factory,
                real,
                now=T0,
                clock=FakeClock(T0),
                pacer=Pacer(limits=SlackLimits.unlimited()),
                dm_channels=DmChannels(),
            )
        )

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.sent for r in reports) == 30
    assert keys_posted(slack_mock) == {f"k{i}": 1 for i in range(30)}


def test_max_messages_and_max_seconds_bound_a_pass(
    session_factory, slack_mock, client, sender_options
):
    for i in range(5):
        add(session_factory, f"k{i}", channel="C0ONE")
    report = deliver_pending(session_factory, client, now=T0, max_messages=2, **sender_options)
    assert report.sent == 2
    # One channel at 1/s: a 2.5 s budget allows the post now and two more at ~1 s and ~2 s.
    fresh = {**sender_options, "pacer": Pacer(sender_options["clock"])}
    report = deliver_pending(session_factory, client, now=T0, max_seconds=2.5, **fresh)
    assert report.sent == 3

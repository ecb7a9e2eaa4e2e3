"""DMs posted to the user id: the DM channel id is stored, a retry still finds its earlier copy."""

from __future__ import annotations

from slack_sdk import WebClient
from sqlalchemy import select

from llmgov.bot.outbox import DmChannels, deliver_pending, drain
from llmgov.governance.outbox import enqueue, file_payload
from llmgov.models.base import transaction
from llmgov.models.dm_channels import DmChannel
from llmgov.models.governance import OutboxMessage
from tests.delivery.conftest import T0, files_shared, keys_posted
from tests.support.slack_mock import Fault


def add(session_factory, key, channel, method="chat.postMessage", payload=None):
    with transaction(session_factory) as session:
        enqueue(
            session,
            key=key,
            method=method,
            channel=channel,
            payload=payload or {"text": key},
            now=T0,
        )


def stored(session_factory) -> dict[str, str]:
    with session_factory() as session:
        return dict(session.execute(select(DmChannel.user_id, DmChannel.channel_id)).all())


def test_the_dm_channel_returned_by_a_post_is_stored(
    session_factory, slack_mock, client, sender_options
):
    add(session_factory, "digest:U0ANN0001", "U0ANN0001")
    add(session_factory, "digest:U0BOB0001", "U0BOB0001")
    report = deliver_pending(session_factory, client, now=T0, **sender_options)
    assert report.sent == 2
    assert stored(session_factory) == {"U0ANN0001": "D0ANN0001", "U0BOB0001": "D0BOB0001"}
    assert slack_mock.calls_to("conversations.open") == []
    with session_factory() as session:
        sent = {r.idempotency_key: r.sent_channel for r in session.scalars(select(OutboxMessage))}
    assert sent == {"digest:U0ANN0001": "D0ANN0001", "digest:U0BOB0001": "D0BOB0001"}


def test_a_timed_out_dm_post_is_found_in_the_dm_not_posted_twice(
    session_factory, slack_mock, sender_options
):
    # The post reaches Slack but the answer comes after the client gave up: the channel id
    # it carried is lost, so the retry opens the DM (once) and finds the copy there.
    impatient = WebClient(token="xoxb-test-token", base_url=slack_mock.url, timeout=0.3)
    add(session_factory, "digest:U0CAT0001", "U0CAT0001")
    slack_mock.fail_next("chat.postMessage", Fault(200, delay=0.8))
    first = deliver_pending(session_factory, impatient, now=T0, **sender_options)
    assert first.retried == 1
    slack_mock.wait_for("chat.postMessage", 1)  # Slack finished posting after we gave up
    assert stored(session_factory) == {}
    with session_factory() as session:
        due = session.scalar(select(OutboxMessage.next_attempt_at))
    second = deliver_pending(session_factory, impatient, now=due, **sender_options)
    assert (second.sent, second.already_sent) == (0, 1)
    assert "chat.postMessage" not in second.calls
    assert keys_posted(slack_mock) == {"digest:U0CAT0001": 1}
    assert len(slack_mock.calls_to("conversations.open")) == 1
    assert stored(session_factory) == {"U0CAT0001": "D0CAT0001"}


def test_a_file_to_a_user_without_a_known_dm_opens_it_once(
    session_factory, slack_mock, client, sender_options
):
    with transaction(session_factory) as session:
        enqueue(
            session,
            key="chart:U0DAN0001",
            method="files.upload_v2",
            channel="U0DAN0001",
            payload=file_payload("chart.png", b"\x89PNG...", title="Spend"),
            now=T0,
        )
    add(session_factory, "digest:U0DAN0001", "U0DAN0001")
    report = deliver_pending(session_factory, client, now=T0, **sender_options)
    assert report.sent == 2
    assert len(slack_mock.calls_to("conversations.open")) == 1
    assert slack_mock.calls_to("chat.postMessage")[0].args["channel"] == "D0DAN0001"
    assert sum(files_shared(slack_mock).values()) == 1


def test_a_new_process_takes_dm_channels_from_the_database(
    session_factory, slack_mock, client, sender_options
):
    add(session_factory, "w1", "U0EVE0001")
    deliver_pending(session_factory, client, now=T0, **sender_options)
    add(session_factory, "w2", "U0EVE0001")
    fresh = {**sender_options, "dm_channels": DmChannels()}
    deliver_pending(session_factory, client, now=T0, **fresh)
    assert [c.args["channel"] for c in slack_mock.calls_to("chat.postMessage")] == [
        "U0EVE0001",
        "D0EVE0001",
    ]
    assert fresh["dm_channels"].get("U0EVE0001") == "D0EVE0001"


def test_a_digest_round_under_enforced_limits_loses_and_doubles_nothing(
    session_factory, clock, sender_options
):
    """120 owners' first and second weekly digest against the rate-limit-enforcing mock."""
    from llmgov.governance.outbox import digest_key
    from tests.support.slack_mock import MockSlack

    owners = [f"U{n:08d}" for n in range(120)]
    mock = MockSlack(enforce_rate_limits=True, clock=clock.monotonic).start()
    try:
        client = WebClient(token="xoxb-test-token", base_url=mock.url, timeout=2)
        # One post in the middle of week 1 is answered 500 (not posted): it is retried.
        mock.fail_next("chat.postMessage", Fault(500), times=1)
        for week in ((2026, 10), (2026, 11)):
            for user in owners:
                add(session_factory, digest_key(user, week), user)
            report = drain(session_factory, client, now=clock.now(), **sender_options)
            assert report.pending_left == 0 and report.failed == 0
        posted = keys_posted(mock)
        expected = {digest_key(u, w): 1 for u in owners for w in ((2026, 10), (2026, 11))}
        assert posted == expected  # every digest once: none lost, none doubled
        # Only the retried post needed its DM channel first (to look for an earlier copy).
        assert [c.args["users"] for c in mock.calls_to("conversations.open")] == [owners[0]]
        assert stored(session_factory) == {u: "D" + u[1:] for u in owners}
        week_2 = [c.args["channel"] for c in mock.calls_to("chat.postMessage")][-len(owners) :]
        assert all(channel.startswith("D") for channel in week_2)
    finally:
        mock.stop()

"""`llmgov outbox failed|replay`: a message Slack refused for good is listed with what to do,
and once the cause is fixed it is delivered once, from the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from llmgov.bot.cli import main
from llmgov.bot.outbox import deliver_pending
from tests.delivery.conftest import T0, keys_posted
from tests.delivery.test_sender import add
from tests.support.slack_mock import Fault


def test_a_refused_post_is_listed_then_replayed_once(
    engine, session_factory, slack_mock, client, sender_options, capsys
):
    add(session_factory, "alert:private", channel="G0PRIVATE")
    # a private channel the bot was not invited to: it cannot join it by itself
    slack_mock.fail_next("chat.postMessage", Fault(403, error="not_in_channel"))
    deliver_pending(session_factory, client, now=T0, **sender_options)
    assert keys_posted(slack_mock) == {}

    assert main(["outbox", "failed"]) == 0
    out = capsys.readouterr().out
    assert "alert:private  chat.postMessage to G0PRIVATE" in out
    assert "invite the bot to the channel" in out
    assert main(["outbox", "failed", "--format", "json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["idempotency_key"] == "alert:private"

    # someone types /invite @llmgov in the channel, then:
    assert main(["outbox", "replay", "alert:private", "no-such-key"]) == 0
    out = capsys.readouterr().out
    assert "1 message(s) queued again" in out and "1 of the keys given" in out
    deliver_pending(session_factory, client, now=datetime.now(UTC), **sender_options)
    assert keys_posted(slack_mock) == {"alert:private": 1}

    assert main(["outbox", "failed"]) == 0
    assert "No failed messages" in capsys.readouterr().out

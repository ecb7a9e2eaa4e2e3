"""governance.outbox: the database side of the outbox (no Slack)."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import func, select

from llmgov.governance.outbox import (
    digest_key,
    enqueue,
    file_payload,
    has_key_or_parts,
    replay_failed,
)
from llmgov.models.base import transaction
from llmgov.models.errors import BadInput
from llmgov.models.governance import OutboxMessage, OutboxStatus
from tests.delivery.conftest import T0


def test_enqueue_is_idempotent_on_key(session_factory):
    with transaction(session_factory) as session:
        first = enqueue(
            session, key="alert:1", method="chat.postMessage", channel="C1", payload={"text": "a"}
        )
        again = enqueue(
            session, key="alert:1", method="chat.postMessage", channel="C1", payload={"text": "b"}
        )
        assert again.id == first.id
    with transaction(session_factory) as session:
        third = enqueue(
            session, key="alert:1", method="chat.postMessage", channel="C2", payload={"text": "c"}
        )
        assert third.payload == {"text": "a"}  # the first enqueue wins; nothing is replaced
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def test_enqueue_uses_the_callers_clock_and_transaction(session_factory):
    with pytest.raises(RuntimeError), transaction(session_factory) as session:
        enqueue(session, key="k", method="chat.postMessage", channel="C1", payload={}, now=T0)
        raise RuntimeError("the caller's work failed")
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    with transaction(session_factory) as session:
        row = enqueue(session, key="k", method="chat.postMessage", channel="C1", payload={}, now=T0)
    assert row.created_at == T0 and row.next_attempt_at == T0
    assert row.status == OutboxStatus.PENDING.value and row.attempts == 0


def test_concurrent_enqueue_of_one_key_makes_one_row(session_factory):
    barrier = threading.Barrier(4)
    ids: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            with transaction(session_factory) as session:
                row = enqueue(
                    session, key="race", method="chat.postMessage", channel="C1", payload={}
                )
                session.flush()
                ids.append(row.id)
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # On SQLite writers serialise; on PostgreSQL a loser sees the unique index and gets the
    # winner's row. Either way: one row, and nobody else fails.
    assert not errors, errors
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key": ""}, "must be 1 to 200 characters"),
        ({"method": "chat.delete"}, "is not one of"),
        ({"channel": ""}, "needs a channel id"),
        ({"payload": {"metadata": {}}}, "must not set 'metadata'"),
        ({"method": "chat.update", "payload": {"text": "x"}}, "needs 'ts' or 'ts_from'"),
        ({"method": "files.upload_v2", "payload": {"filename": "a.png"}}, "needs 'filename'"),
        (
            {"method": "files.upload_v2", "payload": {"filename": "a", "content_b64": "@@"}},
            "is not base64",
        ),
    ],
)
def test_enqueue_refuses_bad_input_with_a_clear_message(session, kwargs, message):
    arguments = {"key": "k", "method": "chat.postMessage", "channel": "C1", "payload": {}}
    arguments.update(kwargs)
    with pytest.raises(BadInput, match=message):
        enqueue(session, **arguments)


def test_digest_keys_and_their_parts(session):
    key = digest_key("U0ANA0001", date(2026, 3, 2))
    assert key == "digest:U0ANA0001:2026-W10"
    assert digest_key("U0ANA0001", (2026, 10)) == key
    assert not has_key_or_parts(session, key)
    enqueue(
        session,
        key=f"{key}:chart",
        method="files.upload_v2",
        channel="U0ANA0001",
        payload=file_payload("chart.png", b"\x89PNG"),
    )
    assert has_key_or_parts(session, key)
    assert not has_key_or_parts(session, "digest:U0ANA0001:2026-W1")  # a prefix is not a part
    assert not has_key_or_parts(session, "digest:U0ANA000_:2026-W10")  # LIKE wildcards escaped


def test_replay_failed_requeues_and_keeps_the_duplicate_check(session):
    row = enqueue(session, key="k", method="chat.postMessage", channel="C1", payload={})
    other = enqueue(session, key="other", method="chat.postMessage", channel="C1", payload={})
    for failed in (row, other):
        failed.status, failed.attempts = OutboxStatus.FAILED.value, 5
    session.flush()
    assert replay_failed(session, ["k"], now=T0) == 1
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, T0)
    assert other.status == "failed"
    assert replay_failed(session) == 1

"""The durable outbox, database side: every Slack message is persisted here before it is sent.

Callers (checks, digests, the gap review) `enqueue` rows inside their own transaction, so a
message exists exactly when the change that caused it is committed. The sender in
`bot/outbox.py` delivers them. Nothing here imports Slack.

Payloads are the Web API arguments of the method, without `channel` (a column) and without
`metadata` (the sender puts the idempotency key there). Two references let a row point at a
message that may not have been sent yet; the sender fills them in once it has been:
- `"ts_from": KEY` (chat.update): update the message that the row KEY posted;
- `"thread_ts_from": KEY` (chat.postMessage, files): reply in the thread of that message.
A file upload (method `files.upload_v2`) carries `filename`, `content_b64` and optionally
`title`, `initial_comment`, `alt_txt`, `thread_ts`.
"""

from __future__ import annotations

import base64
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from llmgov.models.base import utcnow
from llmgov.models.errors import BadInput
from llmgov.models.governance import OutboxMessage, OutboxStatus

POST = "chat.postMessage"
UPDATE = "chat.update"
FILE_UPLOAD = "files.upload_v2"  # slack_sdk's files_upload_v2 (getUploadURLExternal + complete)
METHODS = (POST, UPDATE, FILE_UPLOAD)

# Payload keys the sender resolves from another outbox row.
REFERENCE_KEYS = ("ts_from", "thread_ts_from")
MAX_KEY_LENGTH = 200


def enqueue(
    session: Session,
    *,
    key: str,
    method: str,
    channel: str,
    payload: dict[str, Any],
    alert_id: int | None = None,
    not_before: datetime | None = None,
    now: datetime | None = None,
) -> OutboxMessage:
    """Persist one message to send; idempotent on `key` (the same key returns the same row).

    `channel` is a channel id (C…/G…/D…) or a user id (U…/W…) for a direct message.
    The row is added to `session`; it is committed with the caller's transaction. Pass `now`
    when running on a controlled clock: the row is due from then (or from `not_before`).
    """
    _validate(key=key, method=method, channel=channel, payload=payload)
    existing = session.scalar(select(OutboxMessage).where(OutboxMessage.idempotency_key == key))
    if existing is not None:
        return existing
    values = {
        "idempotency_key": key,
        "method": method,
        "channel": channel,
        "payload": payload,
        "status": OutboxStatus.PENDING.value,
        "attempts": 0,
        "alert_id": alert_id,
        "next_attempt_at": not_before or now or utcnow(),
        "created_at": now or utcnow(),
    }
    # INSERT .. ON CONFLICT DO NOTHING: a concurrent enqueue of the same key is not an error
    # (no savepoint needed: on pysqlite, releasing one would commit the caller's work).
    dialect = session.get_bind().dialect.name
    insert = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}.get(dialect)
    if insert is None:
        session.add(OutboxMessage(**values))
        session.flush()
    else:
        session.execute(insert(OutboxMessage).values(**values).on_conflict_do_nothing())
    return session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.idempotency_key == key)
        .execution_options(populate_existing=True)
    ).one()


def _validate(*, key: str, method: str, channel: str, payload: dict[str, Any]) -> None:
    if not key or len(key) > MAX_KEY_LENGTH:
        raise BadInput(
            f"outbox key {key!r} must be 1 to {MAX_KEY_LENGTH} characters, "
            "e.g. 'alert:42:post' or 'digest:U0ANA0001:2026-W10'"
        )
    if method not in METHODS:
        raise BadInput(f"outbox method {method!r} is not one of {', '.join(METHODS)}")
    if not channel:
        raise BadInput(f"outbox message {key!r} needs a channel id or a user id")
    if not isinstance(payload, dict):
        raise BadInput(f"outbox payload of {key!r} must be a dict of Web API arguments")
    if "metadata" in payload or "channel" in payload:
        raise BadInput(
            f"outbox payload of {key!r} must not set 'metadata' or 'channel': the channel is "
            "its own argument and the sender puts the idempotency key in the metadata"
        )
    if method == UPDATE and not ("ts" in payload or "ts_from" in payload):
        raise BadInput(f"chat.update {key!r} needs 'ts' or 'ts_from' (the key that posted it)")
    if method == FILE_UPLOAD:
        if not payload.get("filename") or not payload.get("content_b64"):
            raise BadInput(f"file upload {key!r} needs 'filename' and 'content_b64'")
        try:
            base64.b64decode(payload["content_b64"], validate=True)
        except ValueError:
            raise BadInput(f"file upload {key!r}: 'content_b64' is not base64") from None


def file_payload(filename: str, content: bytes, **options: Any) -> dict[str, Any]:
    """The payload of a `files.upload_v2` row for `content` (e.g. a PNG chart)."""
    return {
        "filename": filename,
        "content_b64": base64.b64encode(content).decode("ascii"),
        **options,
    }


def digest_key(owner_slack_id: str, week: date | tuple[int, int]) -> str:
    """The key of an owner's weekly digest for an ISO week (further parts may add ':suffix').

    The scheduler's digest job treats an owner as served for the week once a row with this
    key, or with this key followed by ':', exists.
    """
    year, number = (week.isocalendar()[:2]) if isinstance(week, date) else week
    return f"digest:{owner_slack_id}:{year}-W{number:02d}"


def has_key_or_parts(session: Session, key: str) -> bool:
    """True when `key`, or a part `key:...`, is in the outbox (any status)."""
    escaped = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    found = session.scalar(
        select(OutboxMessage.id)
        .where(
            (OutboxMessage.idempotency_key == key)
            | OutboxMessage.idempotency_key.like(f"{escaped}:%", escape="\\")
        )
        .limit(1)
    )
    return found is not None


def replay_failed(
    session: Session, keys: list[str] | None = None, now: datetime | None = None
) -> int:
    """Put failed messages back to pending (all, or those keys). Returns how many.

    Their attempt count restarts at one when they were ever attempted, so the sender still
    checks Slack for an earlier copy before posting again.
    """
    query = select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.FAILED.value)
    if keys is not None:
        query = query.where(OutboxMessage.idempotency_key.in_(keys))
    count = 0
    for row in session.scalars(query).all():
        row.status = OutboxStatus.PENDING.value
        row.attempts = min(row.attempts, 1)
        row.next_attempt_at = now or utcnow()
        count += 1
    session.flush()
    return count


def failed_messages(session: Session) -> list[Any]:
    """The messages Slack refused for good, oldest first: key, method, channel, why."""
    query = (
        select(
            OutboxMessage.idempotency_key,
            OutboxMessage.method,
            OutboxMessage.channel,
            OutboxMessage.last_error,
            OutboxMessage.attempts,
            OutboxMessage.created_at,
        )
        .where(OutboxMessage.status == OutboxStatus.FAILED.value)
        .order_by(OutboxMessage.created_at, OutboxMessage.id)
    )
    return list(session.execute(query).all())

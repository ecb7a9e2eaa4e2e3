"""The outbox sender: deliver pending outbox rows to Slack, losing nothing, posting nothing twice.

How each row is delivered:
1. **Claim** it in its own transaction (a conditional UPDATE on its attempt count): the
   attempt is counted and the row hidden from other senders for `claim_seconds`. A sender
   that dies mid-send leaves the row claimed; it becomes due again when the claim lapses.
2. If an earlier attempt may have reached Slack (attempts > 0), **look for it first**: every
   post carries its idempotency key in message metadata (`event_type` llmgov_outbox), and
   every file its key in the file name, so `conversations.history` (or `.replies` in a
   thread) since the row was created finds a copy that was posted but never marked.
3. **Send**, paced per Slack tier (`bot.pacing`), then **mark sent** with channel and ts.
   A DM goes to the user id: chat.postMessage answers with the DM channel id, which is
   stored (`dm_channels`) for later look-ups; `conversations.open` (Tier 3) is called only
   when a channel id is needed before the first post succeeded (a retry looking for an
   earlier copy, a file upload).

Failures: a 429 reschedules the row after Retry-After (it costs no attempt, and only its own
channel, or its own method for per-workspace limits, waits); 5xx, timeouts and connection
errors back off exponentially with jitter; an error Slack gives a reason for
(`channel_not_found`, `invalid_blocks`, ...) fails the row at once. A row that runs out of
attempts is `failed`: kept, with the last error, and replayable
(`governance.outbox.replay_failed`). Rows of one channel go out in order; one channel
waiting never holds up another.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import heapq
import logging
import os
import random
import threading
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from llmgov.bot import metrics
from llmgov.bot.pacing import AnchoredClock, Clock, Pacer, SystemClock
from llmgov.bot.slack_errors import Final, RateLimited, Transient, classify
from llmgov.governance.outbox import FILE_UPLOAD, POST, UPDATE
from llmgov.models.base import transaction
from llmgov.models.dm_channels import DmChannel, remember_dm_channel
from llmgov.models.governance import Alert, OutboxMessage, OutboxStatus

log = logging.getLogger("llmgov.outbox")

EVENT_TYPE = "llmgov_outbox"


@dataclass
class DeliveryPolicy:
    max_attempts: int = 8  # sending attempts (429s excluded) before a row is failed
    backoff_base_seconds: float = 5.0
    backoff_cap_seconds: float = 900.0
    claim_seconds: float = 120.0  # how long a claimed row stays hidden from other senders
    history_margin: timedelta = timedelta(minutes=10)  # clock skew between us and Slack
    history_pages: int = 5  # pages of 200 messages searched for an earlier copy
    batch_size: int = 2000  # pending rows considered per pass

    def backoff(self, attempts: int, rng: random.Random) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random."""
        ceiling = min(self.backoff_cap_seconds, self.backoff_base_seconds * 2 ** (attempts - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


@dataclass
class DeliveryReport:
    sent: int = 0
    already_sent: int = 0  # found in Slack after an interrupted attempt, marked sent
    rate_limited: int = 0  # rescheduled after Retry-After
    retried: int = 0  # rescheduled after a 5xx, timeout or connection error
    failed: int = 0  # gave up: final error or retry budget spent
    waiting: int = 0  # its referenced message (ts_from / thread_ts_from) is not sent yet
    calls: Counter[str] = field(default_factory=Counter)  # Slack calls by method
    seconds: float = 0.0  # time spent (on the given clock)
    pending_left: int | None = None  # set by drain()

    def merge(self, other: DeliveryReport) -> None:
        for name in ("sent", "already_sent", "rate_limited", "retried", "failed", "waiting"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.calls.update(other.calls)
        self.seconds += other.seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "already_sent": self.already_sent,
            "rate_limited": self.rate_limited,
            "retried": self.retried,
            "failed": self.failed,
            "waiting": self.waiting,
            "calls": dict(sorted(self.calls.items())),
            "seconds": round(self.seconds, 3),
            "pending_left": self.pending_left,
        }


# ---- helpers -----------------------------------------------------------------------------


def metadata_for(key: str) -> dict[str, Any]:
    """The message metadata that carries an outbox row's idempotency key."""
    return {"event_type": EVENT_TYPE, "event_payload": {"key": key}}


def unique_filename(filename: str, key: str) -> str:
    """`chart.png` -> `chart-<10 hex of the key>.png`: how a file upload is found again."""
    stem, ext = os.path.splitext(filename)
    return f"{stem}-{hashlib.sha1(key.encode()).hexdigest()[:10]}{ext}"


def is_user_id(channel: str) -> bool:
    return channel[:1] in ("U", "W")


def needs_dm_channel(method: str, previous_attempts: int) -> bool:
    """Whether a DM row needs its channel id before sending (else the user id will do).

    A first post goes to the user id; a retried post or upload looks for an earlier copy in
    the DM's history, and uploads and updates take a channel id only.
    """
    return method != POST or previous_attempts > 0


class DmChannels:
    """User id -> DM channel id, shared by senders in this process (the `dm_channels` table
    holds them across processes)."""

    def __init__(self) -> None:
        self._by_user: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, user: str) -> str | None:
        with self._lock:
            return self._by_user.get(user)

    def put(self, user: str, channel: str) -> None:
        with self._lock:
            self._by_user[user] = channel


DM_CHANNELS = DmChannels()

# Calls the SDK makes for one of ours, each paced by its own tier.
PACED_AS = {FILE_UPLOAD: ("files.getUploadURLExternal", "files.completeUploadExternal")}


def without_sdk_retries(client: Any) -> Any:
    """A shallow copy of `client` whose SDK retry handlers are off.

    The SDK's handlers would resend a post after a connection reset (a possible duplicate)
    or sleep on a 429 in this thread; the sender retries itself, knowing what was sent.
    """
    if getattr(client, "retry_handlers", None):
        client = copy.copy(client)
        client.retry_handlers = []
    return client


@dataclass
class _Claimed:
    id: int
    key: str
    method: str
    channel: str  # where to send: the stored channel, or the referenced message's channel
    payload: dict[str, Any]
    previous_attempts: int
    attempts: int
    created_at: datetime
    alert_id: int | None
    threaded: bool


# ---- the sender --------------------------------------------------------------------------


class _Sender:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        client: Any,
        clock: Clock,
        pacer: Pacer,
        policy: DeliveryPolicy,
        rng: random.Random,
        dm_channels: DmChannels,
    ) -> None:
        self.session_factory = session_factory
        self.client = without_sdk_retries(client)
        self.clock = clock
        self.pacer = pacer
        self.policy = policy
        self.rng = rng
        self.dm_channels = dm_channels
        self.report = DeliveryReport()

    # -- Slack calls, paced and counted --
    def _call(self, method: str, pace_channel: str | None, fn: Callable[[], Any]) -> Any:
        for paced in PACED_AS.get(method, (method,)):
            self.pacer.acquire(paced, pace_channel)
        self.report.calls[method] += 1
        try:
            return fn()
        except Exception as error:
            classified = classify(method, error)
            if isinstance(classified, RateLimited):
                for paced in PACED_AS.get(method, (method,)):
                    self.pacer.penalise(paced, pace_channel, classified.retry_after)
            raise classified from error

    def _known_dm_channel(self, user: str) -> str | None:
        """The user's DM channel if we have seen it: this process's cache, then the database."""
        cached = self.dm_channels.get(user)
        if cached:
            return cached
        with self.session_factory() as session:
            known = session.scalar(select(DmChannel.channel_id).where(DmChannel.user_id == user))
        if known:
            self.dm_channels.put(user, known)
        return known

    def _open_dm_channel(self, user: str) -> str:
        """conversations.open (Tier 3): only when a DM channel id is needed before any post."""
        response = self._call(
            "conversations.open", None, lambda: self.client.conversations_open(users=user)
        )
        channel = response["channel"]["id"]
        with transaction(self.session_factory) as session:
            remember_dm_channel(session, user, channel, self.clock.now())
        self.dm_channels.put(user, channel)
        return channel

    def _target(self, job: _Claimed) -> str:
        """Where to send: a channel id, or for a DM the user id when posting is all we do.

        chat.postMessage takes a user id and answers with the DM channel id, which
        `_mark_sent` stores. A channel id is needed first only to look for an earlier copy
        (a retry) or to upload a file: then an unknown DM channel is opened.
        """
        if not is_user_id(job.channel):
            return job.channel
        known = self._known_dm_channel(job.channel)
        if known:
            return known
        if needs_dm_channel(job.method, job.previous_attempts):
            return self._open_dm_channel(job.channel)
        return job.channel

    def _find_earlier_copy(self, job: _Claimed, channel: str) -> str | None:
        """The ts (or file id) of a copy an interrupted attempt already posted, if any."""
        oldest = f"{(job.created_at - self.policy.history_margin).timestamp():.6f}"
        filename = (
            unique_filename(job.payload["filename"], job.key) if job.method == FILE_UPLOAD else None
        )
        cursor: str | None = None
        for _ in range(self.policy.history_pages):
            args: dict[str, Any] = {
                "channel": channel,
                "oldest": oldest,
                "include_all_metadata": True,
                "limit": 200,
            }
            if cursor:
                args["cursor"] = cursor
            if job.threaded:
                args["ts"] = job.payload["thread_ts"]
                method, fn = "conversations.replies", self.client.conversations_replies
            else:
                method, fn = "conversations.history", self.client.conversations_history
            response = self._call(method, None, lambda fn=fn, args=args: fn(**args))
            for message in response.get("messages") or []:
                found = _match(message, job.key, filename)
                if found:
                    return found
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not response.get("has_more") or not cursor:
                return None
        return None

    def _send(self, job: _Claimed, channel: str) -> tuple[str, str]:
        """Send once; returns (channel, ts) — for a file, (channel, file id)."""
        args = {k: v for k, v in job.payload.items() if k not in ("ts_from", "thread_ts_from")}
        pace = job.channel
        if job.method == POST:

            def post() -> Any:
                return self.client.chat_postMessage(
                    channel=channel, metadata=metadata_for(job.key), **args
                )

            try:
                response = self._call(POST, pace, post)
            except Final as error:
                # A public channel the bot has not joined: join once, then post.
                if error.code != "not_in_channel" or not channel.startswith("C"):
                    raise
                self._call(
                    "conversations.join",
                    None,
                    lambda: self.client.conversations_join(channel=channel),
                )
                response = self._call(POST, pace, post)
            return response["channel"], response["ts"]
        if job.method == UPDATE:
            response = self._call(
                UPDATE, pace, lambda: self.client.chat_update(channel=channel, **args)
            )
            return response.get("channel") or channel, response["ts"]
        # files.upload_v2: getUploadURLExternal, the upload, completeUploadExternal.
        content = base64.b64decode(args.pop("content_b64"))
        original = args.pop("filename")
        args.setdefault("title", original)
        response = self._call(
            FILE_UPLOAD,
            None,
            lambda: self.client.files_upload_v2(
                channel=channel,
                content=content,
                filename=unique_filename(original, job.key),
                **args,
            ),
        )
        uploaded = response.get("file") or (response.get("files") or [{}])[0]
        return channel, uploaded["id"]

    # -- database steps, each its own short transaction --
    def _claim(self, row_id: int) -> _Claimed | str:
        """Take the row for one attempt; or say why not: 'gone', 'waiting', 'failed'."""
        now = self.clock.now()
        with transaction(self.session_factory) as session:
            row = session.get(OutboxMessage, row_id)
            if row is None or row.status != OutboxStatus.PENDING.value:
                return "gone"
            if row.next_attempt_at > now:
                return "gone"
            payload = dict(row.payload)
            channel = row.channel or ""
            for field_name, ref_name in (("ts", "ts_from"), ("thread_ts", "thread_ts_from")):
                ref_key = payload.get(ref_name)
                if not ref_key:
                    continue
                target = session.scalar(
                    select(OutboxMessage).where(OutboxMessage.idempotency_key == ref_key)
                )
                if target is None or target.status == OutboxStatus.FAILED.value:
                    why = "is not in the outbox" if target is None else "failed"
                    row.status = OutboxStatus.FAILED.value
                    row.last_error = f"{ref_name} {ref_key!r} {why}"
                    return "failed"
                if target.status != OutboxStatus.SENT.value:
                    return "waiting"
                payload[field_name] = target.sent_ts
                channel = target.sent_channel or channel
            previous = row.attempts
            claimed = session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == row_id,
                    OutboxMessage.status == OutboxStatus.PENDING.value,
                    OutboxMessage.attempts == previous,
                )
                .values(
                    attempts=previous + 1,
                    next_attempt_at=now + timedelta(seconds=self.policy.claim_seconds),
                )
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:
                return "gone"  # another sender claimed it first
            return _Claimed(
                id=row.id,
                key=row.idempotency_key,
                method=row.method,
                channel=channel,
                payload=payload,
                previous_attempts=previous,
                attempts=previous + 1,
                created_at=row.created_at,
                alert_id=row.alert_id,
                threaded=bool(payload.get("thread_ts")),
            )

    def _mark_sent(self, job: _Claimed, channel: str, ts: str) -> None:
        now = self.clock.now()
        with transaction(self.session_factory) as session:
            session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == job.id, OutboxMessage.status == OutboxStatus.PENDING.value
                )
                .values(
                    status=OutboxStatus.SENT.value,
                    sent_channel=channel,
                    sent_ts=ts,
                    sent_at=now,
                    last_error=None,
                )
                .execution_options(synchronize_session=False)
            )
            if is_user_id(job.channel) and channel.startswith("D"):
                remember_dm_channel(session, job.channel, channel, now)
            if job.alert_id is not None and job.method == POST and not job.threaded:
                session.execute(
                    update(Alert)
                    .where(Alert.id == job.alert_id, Alert.message_ts.is_(None))
                    .values(channel_id=channel, message_ts=ts)
                    .execution_options(synchronize_session=False)
                )
        if is_user_id(job.channel) and channel.startswith("D"):
            self.dm_channels.put(job.channel, channel)

    def _reschedule(self, job: _Claimed, error: Exception) -> str:
        now = self.clock.now()
        values: dict[str, Any] = {"last_error": str(error)[:2000]}
        if isinstance(error, RateLimited):
            outcome = "rate_limited"
            # Slack refused before doing anything: the attempt does not count.
            values["attempts"] = job.previous_attempts
            values["next_attempt_at"] = now + timedelta(seconds=error.retry_after)
        elif isinstance(error, Final) or job.attempts >= self.policy.max_attempts:
            outcome = "failed"
            values["status"] = OutboxStatus.FAILED.value
            if not isinstance(error, Final):
                values["last_error"] = f"gave up after {job.attempts} attempts: {error}"[:2000]
        else:
            outcome = "retried"
            delay = self.policy.backoff(job.attempts, self.rng)
            values["next_attempt_at"] = now + timedelta(seconds=delay)
        with transaction(self.session_factory) as session:
            session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == job.id, OutboxMessage.status == OutboxStatus.PENDING.value
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        log.warning(
            "outbox %s %s: %s",
            job.key,
            outcome,
            values["last_error"],
            extra={"outbox_key": job.key, "outcome": outcome, "attempts": job.attempts},
        )
        return outcome

    # -- one row --
    def deliver(self, row_id: int) -> str:
        """Deliver one row: 'sent', 'already_sent', 'rate_limited', 'retried', 'failed',
        'waiting' or 'gone' (another sender has it, or it is no longer pending)."""
        claimed = self._claim(row_id)
        if isinstance(claimed, str):
            return claimed
        job = claimed
        try:
            channel = self._target(job)
            if job.previous_attempts > 0 and job.method in (POST, FILE_UPLOAD):
                try:
                    earlier = self._find_earlier_copy(job, channel)
                except Final as error:
                    # We cannot look (e.g. a missing history scope): sending is better than
                    # losing the message, at the risk of a duplicate; say so.
                    log.warning("outbox %s: cannot check for an earlier copy: %s", job.key, error)
                    earlier = None
                if earlier:
                    self._mark_sent(job, channel, earlier)
                    return "already_sent"
            sent_channel, ts = self._send(job, channel)
        except (RateLimited, Transient, Final) as error:
            return self._reschedule(job, error)
        self._mark_sent(job, sent_channel, ts)
        return "sent"


def _match(message: dict[str, Any], key: str, filename: str | None) -> str | None:
    if filename:
        for shared in message.get("files") or []:
            if shared.get("name") == filename:
                return shared.get("id")
        return None
    meta = message.get("metadata") or {}
    if meta.get("event_type") == EVENT_TYPE and (meta.get("event_payload") or {}).get("key") == key:
        return message.get("ts")
    return None


def _pace_method(method: str) -> str:
    return PACED_AS.get(method, (method,))[0]


def deliver_pending(
    session_factory: sessionmaker[Session],
    client: Any,
    now: datetime | None = None,
    max_messages: int | None = None,
    *,
    max_seconds: float | None = None,
    clock: Clock | None = None,
    pacer: Pacer | None = None,
    policy: DeliveryPolicy | None = None,
    rng: random.Random | None = None,
    dm_channels: DmChannels | None = None,
) -> DeliveryReport:
    """One pass over the due pending rows: send what can be sent now, reschedule the rest.

    `now` anchors the database clock (rows due at `now` are sent; it advances with `clock`).
    Stops after `max_messages` rows or `max_seconds`, whichever comes first; pacing sleeps on
    `clock`. Rows of one channel go in order; a channel whose head row is not due (backing
    off, rate-limited, waiting for its referenced message) is skipped, never the others.
    """
    base = clock or SystemClock()
    clock = AnchoredClock(now, base) if now is not None else base
    pacer = pacer or Pacer(base)
    sender = _Sender(
        session_factory,
        client,
        clock,
        pacer,
        policy or DeliveryPolicy(),
        rng or random.Random(),
        dm_channels or DM_CHANNELS,
    )
    started = clock.monotonic()
    deadline = started + max_seconds if max_seconds is not None else None
    report = sender.report

    with session_factory() as session:
        rows = session.execute(
            select(
                OutboxMessage.id,
                OutboxMessage.channel,
                OutboxMessage.method,
                OutboxMessage.next_attempt_at,
            )
            .where(OutboxMessage.status == OutboxStatus.PENDING.value)
            .order_by(OutboxMessage.id)
            .limit(sender.policy.batch_size)
        ).all()
        users = sorted({channel for _, channel, _, _ in rows if channel and is_user_id(channel)})
        for start in range(0, len(users), 500):  # one look-up per 500 DMs, not one per row
            for user, dm in session.execute(
                select(DmChannel.user_id, DmChannel.channel_id).where(
                    DmChannel.user_id.in_(users[start : start + 500])
                )
            ):
                sender.dm_channels.put(user, dm)
    queues: dict[str, deque[tuple[int, str, datetime]]] = defaultdict(deque)
    for row_id, channel, method, due in rows:
        queues[channel or ""].append((row_id, method, due))

    heap: list[tuple[float, int, str]] = []
    order = 0

    def head_wait(channel: str) -> float:
        """Seconds until the pacer lets the channel's next row go."""
        wait = pacer.ready_in(_pace_method(queues[channel][0][1]), channel)
        method = queues[channel][0][1]
        if is_user_id(channel) and method != POST and sender.dm_channels.get(channel) is None:
            wait = max(wait, pacer.ready_in("conversations.open"))
        return wait

    def schedule(channel: str) -> None:
        nonlocal order
        queue = queues[channel]
        if queue and queue[0][2] <= clock.now():
            order += 1
            heapq.heappush(heap, (clock.monotonic() + head_wait(channel), order, channel))

    for channel in queues:
        schedule(channel)

    processed = 0
    while heap:
        if max_messages is not None and processed >= max_messages:
            break
        _, _, channel = heapq.heappop(heap)
        current = clock.monotonic()
        wait = head_wait(channel)
        # Another channel is ready sooner (its stored time may be stale: ask the pacer, so a
        # limit shared by every channel does not send us round all of them for each post).
        if wait > 0 and heap and head_wait(heap[0][2]) < wait:
            order += 1
            heapq.heappush(heap, (current + wait, order, channel))
            continue
        if deadline is not None and current + wait > deadline:
            break
        row_id = queues[channel].popleft()[0]
        outcome = sender.deliver(row_id)
        if outcome != "gone":
            processed += 1
            metrics.inc("llmgov_outbox_deliveries_total", {"outcome": outcome})
        if outcome in ("sent", "already_sent", "failed", "gone"):
            schedule(channel)  # the next row of this channel, in order
        elif outcome in ("rate_limited", "retried", "waiting"):
            queues[channel].clear()  # keep order: the rest waits behind its head
        if outcome in ("sent", "already_sent", "rate_limited", "retried", "failed", "waiting"):
            setattr(report, outcome, getattr(report, outcome) + 1)
    report.seconds = clock.monotonic() - started
    return report


def drain(
    session_factory: sessionmaker[Session],
    client: Any,
    *,
    timeout_seconds: float = 600.0,
    now: datetime | None = None,
    clock: Clock | None = None,
    pacer: Pacer | None = None,
    policy: DeliveryPolicy | None = None,
    rng: random.Random | None = None,
    dm_channels: DmChannels | None = None,
) -> DeliveryReport:
    """Deliver until nothing is pending (or only rows due after the timeout remain).

    For one-off runs (`llmgov digest`, `llmgov check` without --dry-run) that must leave
    nothing behind; sleeps on `clock` between passes until the next row is due.
    """
    base = clock or SystemClock()
    clock = AnchoredClock(now, base) if now is not None else base
    pacer = pacer or Pacer(base)
    total = DeliveryReport()
    started = clock.monotonic()
    while True:
        left = timeout_seconds - (clock.monotonic() - started)
        if left <= 0:
            break
        report = deliver_pending(
            session_factory,
            client,
            now=clock.now(),
            max_seconds=left,
            clock=base,
            pacer=pacer,
            policy=policy,
            rng=rng,
            dm_channels=dm_channels,
        )
        total.merge(report)
        with session_factory() as session:
            next_due = session.scalar(
                select(OutboxMessage.next_attempt_at)
                .where(OutboxMessage.status == OutboxStatus.PENDING.value)
                .order_by(OutboxMessage.next_attempt_at)
                .limit(1)
            )
        if next_due is None:
            break
        wait = (next_due - clock.now()).total_seconds()
        progressed = report.sent + report.already_sent + report.failed
        if not progressed:
            wait = max(wait, 1.0)  # e.g. rows waiting for a message that is backing off
        if wait > timeout_seconds - (clock.monotonic() - started):
            break
        if wait > 0:
            clock.sleep(wait)
    with session_factory() as session:
        total.pending_left = len(
            session.scalars(
                select(OutboxMessage.id).where(OutboxMessage.status == OutboxStatus.PENDING.value)
            ).all()
        )
    total.seconds = clock.monotonic() - started
    return total

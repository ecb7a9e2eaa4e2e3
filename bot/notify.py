"""The governance loop's jobs: checks → alerts → posts, weekly digests, the gap review.

Each job is a plain function of `now` (the scheduler and the CLI call the same functions):
it assembles the data, renders it, and enqueues the Slack messages in the durable outbox
(`governance.outbox`) in the same transaction as the state change that caused them, so a
message exists exactly when its alert or digest does. The sender (`bot.outbox`) delivers.

With `dry_run=True` nothing is written: the result lists exactly the messages that would be
enqueued (method, channel, payload), and the transaction is rolled back.

Routing: an alert goes to its workload's team channel when the team has one, else to the
governance channel (`LLMGOV_CHANNEL`); updates and thread replies follow the original post.
Digests are DMs to the owner. The gap review goes to the governance channel.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from llmgov.bot.blocks.alerts import alert_message, alert_reply, alert_view
from llmgov.bot.blocks.common import Message, blocks_to_text
from llmgov.bot.blocks.digest import digest_chart, digest_message
from llmgov.bot.blocks.gaps import gap_review_message
from llmgov.bot.breaker_notify import notify_breakers
from llmgov.bot.chart_worker import ChartWorker
from llmgov.bot.settings import Settings
from llmgov.governance import alerts as alert_lifecycle
from llmgov.governance import outbox
from llmgov.governance.alerts import AlertChange, ChangeAction
from llmgov.governance.checks import evaluate
from llmgov.governance.digest import OwnerDigest, build_digests
from llmgov.governance.findings import MINUTE_KINDS, Finding, Kind, severity_rank
from llmgov.governance.gap_review import GapReview, build_gap_review, record_published
from llmgov.governance.thresholds import Thresholds, for_workload, load_thresholds
from llmgov.models.errors import BadInput
from llmgov.models.governance import Alert, OutboxMessage
from llmgov.models.registry import Workload

log = logging.getLogger("llmgov.notify")


@dataclass(frozen=True)
class Outgoing:
    """One message to enqueue: the arguments of `governance.outbox.enqueue`."""

    key: str
    method: str
    channel: str | None
    payload: dict[str, Any]
    alert_id: int | None = None

    def preview(self) -> str:
        """What a person would read, as plain text (for `--dry-run`)."""
        if self.method == outbox.FILE_UPLOAD:
            return f"[file {self.payload.get('filename')}: {self.payload.get('title') or ''}]\n"
        blocks = self.payload.get("blocks") or []
        return blocks_to_text(blocks) if blocks else str(self.payload.get("text", "")) + "\n"

    def to_json(self) -> dict[str, Any]:
        payload = dict(self.payload)
        if "content_b64" in payload:  # a chart: its size, not its bytes
            payload["content_b64"] = f"<{len(payload['content_b64'])} base64 characters>"
        return {
            "key": self.key,
            "method": self.method,
            "channel": self.channel,
            "alert_id": self.alert_id,
            "payload": payload,
        }


@dataclass
class CheckRun:
    now: datetime
    as_of: datetime | date
    dry_run: bool
    findings: list[Finding]
    changes: list[dict[str, Any]]
    messages: list[Outgoing]

    def as_dict(self) -> dict[str, Any]:
        """A short summary for logs and the scheduler: counts, not contents."""
        actions: dict[str, int] = {}
        for change in self.changes:
            actions[change["action"]] = actions.get(change["action"], 0) + 1
        return {
            "findings": len(self.findings),
            "alerts": actions,
            "messages": len(self.messages),
            "dry_run": self.dry_run,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "as_of": self.as_of.isoformat(),
            "dry_run": self.dry_run,
            "findings": [f.to_json() for f in self.findings],
            "changes": self.changes,
            "messages": [m.to_json() for m in self.messages],
        }


@dataclass
class DigestRun:
    now: datetime
    dry_run: bool
    digests: list[OwnerDigest]
    messages: list[Outgoing]
    already_sent: list[str] = field(default_factory=list)  # owners served this week already

    def as_dict(self) -> dict[str, Any]:
        return {
            "digests": len(self.digests) - len(self.already_sent),
            "already_sent": len(self.already_sent),
            "messages": len(self.messages),
            "dry_run": self.dry_run,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "dry_run": self.dry_run,
            "digests": [d.to_json() for d in self.digests],
            "already_sent": self.already_sent,
            "messages": [m.to_json() for m in self.messages],
        }


@dataclass
class GapRun:
    now: datetime
    dry_run: bool
    review: GapReview
    messages: list[Outgoing]
    already_sent: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "gaps": len(self.review.rows),
            "owned_share": self.review.owned_share,
            "already_sent": self.already_sent,
            "messages": len(self.messages),
            "dry_run": self.dry_run,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "dry_run": self.dry_run,
            "review": self.review.to_json(),
            "already_sent": self.already_sent,
            "messages": [m.to_json() for m in self.messages],
        }


# ---- checks → alerts → posts -----------------------------------------------------------


def run_checks(
    session_factory: sessionmaker[Session],
    settings: Settings,
    now: datetime,
    dry_run: bool = False,
    *,
    as_of: datetime | date | None = None,
) -> CheckRun:
    """Evaluate every check as of `as_of` (default `now`), move the alerts through their
    lifecycle at `now`, and enqueue the posts, updates and thread replies that says."""
    now = _aware(now)
    with session_factory() as session:
        try:
            thresholds = load_thresholds(session)
            findings = evaluate(session, as_of or now, thresholds)
            # the early warning's alerts are raised and resolved by its own runs
            checked = [kind.value for kind in Kind if kind.value not in MINUTE_KINDS]
            changes = alert_lifecycle.sync(session, findings, now, kinds=checked)
            messages = alert_messages(session, settings, changes, thresholds, now, dry_run)
            # read the alerts before a dry run's rollback expires them (the session closes)
            described = [c.to_json() for c in changes]
            if dry_run:
                session.rollback()
            else:
                _enqueue(session, messages, now)
                session.commit()
        except BaseException:
            session.rollback()
            raise
    # The circuit breakers fire from the same findings (their cards enqueue themselves).
    for notice in notify_breakers(session_factory, settings, now, findings, dry_run=dry_run):
        messages += [Outgoing(key, outbox.POST, ch, body) for key, ch, body in notice.posts]
    return CheckRun(
        now=now,
        as_of=as_of or now,
        dry_run=dry_run,
        findings=findings,
        changes=described,
        messages=messages,
    )


def post_key(alert: Alert) -> str:
    """The outbox key of an alert's post; a reopened alert gets a new post (and key)."""
    return f"alert:{alert.id}:{alert.first_seen_at:%Y%m%dT%H%M%S}"


def alert_messages(
    session: Session,
    settings: Settings,
    changes: Iterable[AlertChange],
    thresholds: Thresholds,
    now: datetime,
    dry_run: bool = False,
) -> list[Outgoing]:
    """The Slack messages for these alert changes (see `governance.alerts` for the table)."""
    messages: list[Outgoing] = []
    amounts: dict[str, Any] = {}  # new post key -> money at stake, for the flood summary
    posted: dict[str, str] = {}  # post key -> channel, for posts made in this batch
    stamp = now.strftime("%Y%m%dT%H%M%S")
    for change in changes:
        alert = change.alert
        workload = _workload(session, alert.workload_id)
        key = post_key(alert)
        channel = _posted_channel(session, key) or posted.get(key)
        view = alert_view(alert, workload)
        postable = _postable(alert, _limits(thresholds, workload))
        if change.action is ChangeAction.RESOLVED:
            if channel:
                messages.append(_update(key, channel, alert_message(view), alert.id, stamp))
            continue
        if channel is None:
            if postable:  # new, or risen to the posting level for the first time
                target = _route(settings, workload, dry_run)
                messages.append(_post(key, target, alert_message(view), alert.id))
                posted[key] = target
                amounts[key] = alert.amount or 0
            continue
        # Already posted: say it again in the thread (notifies), and refresh the post.
        reply = alert_reply(view, change.action.value, change.previous_severity)
        messages.append(
            Outgoing(
                key=f"{key}:{change.action.value}:{stamp}",
                method=outbox.POST,
                channel=channel,
                payload={**_payload(reply), "thread_ts_from": key},
                alert_id=alert.id,
            )
        )
        messages.append(_update(key, channel, alert_message(view), alert.id, stamp))
    return _group_floods(messages, amounts, thresholds.post_max_per_channel, stamp)


GROUPED_TOP = 5  # alerts named in a grouped summary post
# registry gaps: with nothing at stake, a finding of these kinds only restates the registry
REGISTRY_GAP_KINDS = frozenset(
    {"unowned_workload", "owner_inactive", "missing_budget", "missing_exit_strategy"}
)


def _postable(alert: Alert, limits: Thresholds) -> bool:
    """The posting policy: severe enough, enough money at stake, and not a $0 registry
    gap (those go to the gap review and the digest)."""
    if severity_rank(alert.severity) < severity_rank(limits.post_min_severity):
        return False
    amount = alert.amount or 0
    if alert.kind in REGISTRY_GAP_KINDS and amount <= 0:
        return False
    return amount >= limits.post_min_amount or alert.kind == "stale_data"


def _group_floods(
    messages: list[Outgoing], amounts: dict[str, Any], limit: int, stamp: str
) -> list[Outgoing]:
    """More than `limit` new posts to one channel become one summary: the largest by money
    at stake, a count of the rest, and how to see them all."""
    new_posts: dict[str, list[Outgoing]] = {}
    for message in messages:
        if message.key in amounts and message.method == outbox.POST:
            new_posts.setdefault(message.channel or "", []).append(message)
    flooded = {channel: posts for channel, posts in new_posts.items() if len(posts) > limit}
    if not flooded:
        return messages
    grouped = {id(m) for posts in flooded.values() for m in posts}
    kept = [m for m in messages if id(m) not in grouped]
    for channel, posts in flooded.items():
        posts = sorted(posts, key=lambda m: -float(amounts[m.key]))
        top = posts[:GROUPED_TOP]
        lines = [f"• {m.payload['text']}" for m in top]
        rest = len(posts) - len(top)
        text = (
            f"{len(posts)} new alerts in this run; the {len(top)} with the most money at stake:\n"
            + "\n".join(lines)
            + (f"\n…and {rest} more." if rest else "")
            + "\nSee them all: `llmgov check --dry-run` or `/llm-cost all`."
        )
        summary = Message(text=text[:3000], blocks=())
        kept.append(_post(f"alerts:summary:{channel}:{stamp}", channel, summary, None))
    return kept


def _limits(thresholds: Thresholds, workload: Workload | None) -> Thresholds:
    if workload is None or not workload.thresholds:
        return thresholds
    return for_workload(thresholds, workload.slug, workload.thresholds)


def _route(settings: Settings, workload: Workload | None, dry_run: bool) -> str:
    """The team's channel when it has one, else the governance channel."""
    team = workload.team if workload is not None else None
    if team is not None and team.channel_id:
        return team.channel_id
    if settings.governance_channel:
        return settings.governance_channel
    if dry_run:
        return "(LLMGOV_CHANNEL)"
    raise BadInput(
        "an alert has no team channel to go to and LLMGOV_CHANNEL is not set: set "
        "LLMGOV_CHANNEL to the governance channel id (e.g. C0GOVERN01) and run again"
    )


def _payload(message: Message) -> dict[str, Any]:
    return {"text": message.text, "blocks": message.block_dicts()}


def _post(key: str, channel: str, message: Message, alert_id: int | None) -> Outgoing:
    return Outgoing(key, outbox.POST, channel, _payload(message), alert_id)


def _update(key: str, channel: str, message: Message, alert_id: int, stamp: str) -> Outgoing:
    return Outgoing(
        key=f"{key}:update:{stamp}",
        method=outbox.UPDATE,
        channel=channel,
        payload={**_payload(message), "ts_from": key},
        alert_id=alert_id,
    )


def _posted_channel(session: Session, key: str) -> str | None:
    row = session.scalar(select(OutboxMessage).where(OutboxMessage.idempotency_key == key))
    if row is None:
        return None
    return row.sent_channel or row.channel


def _workload(session: Session, workload_id: int | None) -> Workload | None:
    if workload_id is None:
        return None
    return session.scalar(
        select(Workload)
        .where(Workload.id == workload_id)
        .options(
            selectinload(Workload.owner),
            selectinload(Workload.backup_owner),
            selectinload(Workload.team),
        )
    )


def _enqueue(session: Session, messages: Iterable[Outgoing], now: datetime) -> None:
    for message in messages:
        if message.channel is None:
            raise BadInput(f"message {message.key} has no channel to go to")
        outbox.enqueue(
            session,
            key=message.key,
            method=message.method,
            channel=message.channel,
            payload=message.payload,
            alert_id=message.alert_id,
            now=now,
        )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# ---- weekly digests --------------------------------------------------------------------


def _local_day(moment: datetime, tz: str | None) -> date:
    """The owner's calendar day at `moment` (their Slack time zone; UTC when unknown)."""
    try:
        zone = ZoneInfo(tz) if tz else UTC
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    return moment.astimezone(zone).date()


def send_digests(
    session_factory: sessionmaker[Session],
    settings: Settings,
    now: datetime,
    owner: str | None = None,
    dry_run: bool = False,
    *,
    as_of: datetime | date | None = None,
    owners: list[str] | None = None,
    charts: ChartWorker | None = None,
) -> DigestRun:
    """Enqueue this week's digest DM (and its chart) for every owner, or for `owner`.

    Exactly one digest per owner and ISO week (of the owner's own calendar): the outbox
    key `digest:<owner>:<year>-W<week>` is checked first, so a second run in the same week,
    from the scheduler or the CLI, sends nothing more. `owners` (Slack ids) serves several
    owners in one pass: one load of their workloads instead of one per owner. `charts`: the
    process that draws the charts (bot/chart_worker.py), if any."""
    now = _aware(now)
    reference = _reference(now, as_of)
    with session_factory() as session:
        try:
            digests = build_digests(session, as_of or now, owner, owners=owners)
            messages: list[Outgoing] = []
            served: list[str] = []
            for digest in digests:
                key = outbox.digest_key(digest.owner, _local_day(reference, digest.tz))
                if outbox.has_key_or_parts(session, key):
                    served.append(digest.owner)
                    continue
                messages.extend(digest_messages(digest, key, charts))
            if dry_run:
                session.rollback()
            else:
                _enqueue(session, messages, now)
                session.commit()
        except BaseException:
            session.rollback()
            raise
    return DigestRun(now, dry_run, digests, messages, served)


def digest_messages(
    digest: OwnerDigest, key: str, charts: ChartWorker | None = None
) -> list[Outgoing]:
    """The digest DM, then its chart as a file in the same DM."""
    messages = [_post(key, digest.owner, digest_message(digest), None)]
    png = digest_chart(digest, charts=charts)
    if png is not None:
        messages.append(
            Outgoing(
                key=f"{key}:chart",
                method=outbox.FILE_UPLOAD,
                channel=digest.owner,
                payload=outbox.file_payload(
                    f"llm-spend-{digest.week[1]:%Y-%m-%d}.png",
                    png,
                    title=f"LLM spend to {digest.as_of:%-d %b}",
                    alt_txt="Daily spend of your workloads and this month against the budget",
                ),
            )
        )
    return messages


def _reference(now: datetime, as_of: datetime | date | None) -> datetime:
    """The instant that names the week: `now`, or the end of the `as_of` day."""
    if as_of is None:
        return now
    if isinstance(as_of, datetime):
        return _aware(as_of)
    return datetime.combine(as_of, time(23, 59), tzinfo=UTC)


# ---- the ownership-gap review ----------------------------------------------------------


def gap_review_key(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"gaps:{year}-W{week:02d}"


def send_gap_review(
    session_factory: sessionmaker[Session],
    settings: Settings,
    now: datetime,
    dry_run: bool = False,
    *,
    as_of: datetime | date | None = None,
) -> GapRun:
    """Enqueue this week's ownership-gap review in the governance channel (once a week)."""
    now = _aware(now)
    reference = _reference(now, as_of)
    with session_factory() as session:
        try:
            review = build_gap_review(session, as_of or now)
            key = gap_review_key(reference.date())
            if outbox.has_key_or_parts(session, key):
                return GapRun(now, dry_run, review, [], already_sent=True)
            channel = settings.governance_channel
            if channel is None:
                if not dry_run:
                    raise BadInput(
                        "the gap review goes to the governance channel: set LLMGOV_CHANNEL "
                        "to its id (e.g. C0GOVERN01) and run again"
                    )
                channel = "(LLMGOV_CHANNEL)"
            messages = [_post(key, channel, gap_review_message(review), None)]
            if dry_run:
                session.rollback()
            else:
                _enqueue(session, messages, now)
                record_published(session, review)
                session.commit()
        except BaseException:
            session.rollback()
            raise
    return GapRun(now, dry_run, review, messages)


# ---- delivery, for one-off runs --------------------------------------------------------


def deliver_now(
    session_factory: sessionmaker[Session], settings: Settings, timeout_seconds: float = 600.0
) -> dict[str, Any] | None:
    """Deliver what is pending through the outbox sender, for runs that must not leave
    messages behind (the CLI without --dry-run). None when there is no Slack token."""
    if not settings.slack_bot_token:
        return None
    from llmgov.bot.outbox import drain  # the sender needs Slack; import it only when delivering
    from llmgov.bot.slack_client import make_client

    report = drain(session_factory, make_client(settings), timeout_seconds=timeout_seconds)
    return report.as_dict()


__all__ = [
    "CheckRun",
    "DigestRun",
    "GapRun",
    "Outgoing",
    "alert_messages",
    "deliver_now",
    "digest_messages",
    "gap_review_key",
    "post_key",
    "run_checks",
    "send_digests",
    "send_gap_review",
]

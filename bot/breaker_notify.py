"""The breaker's side of the check job: move each breaker on from the findings, and queue the
breaker card to the owner and the governance admins when one newly fires.

Per workload, one transaction holds the state change, its audit event and the outbox rows,
so a message exists exactly when the firing is committed. The outbox keys are
`breaker:<slug>:<firing id>:<recipient>`: re-running the same check adds nothing.

Recipients: the owner by DM (the backup owner when the owner is missing or has left), each
admin user in LLMGOV_ADMINS by DM, and, for admin user groups (S…), one post in the
governance channel that mentions the group. With nobody to tell, the governance channel.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from llmgov.bot.blocks.breaker import breaker_message
from llmgov.bot.blocks.common import Message, usergroup_mention
from llmgov.bot.settings import Settings
from llmgov.governance import outbox
from llmgov.governance.breaker_policy import FindingLike
from llmgov.guardrails.actions import breaker_policy, lock_workload, observe
from llmgov.guardrails.card import breaker_card
from llmgov.guardrails.state import Status, load_state, state_of
from llmgov.models.base import transaction
from llmgov.models.errors import BadInput
from llmgov.models.governance import OutboxMessage
from llmgov.models.registry import Workload, WorkloadStatus

log = logging.getLogger("llmgov.breaker")

KEY_PREFIX = "breaker"


@dataclass(frozen=True)
class BreakerNotice:
    """A breaker that fired in this check, and where its card went (or would go)."""

    slug: str
    firing_id: str
    triggers: tuple[str, ...]
    recipients: tuple[str, ...]  # user ids (DMs) and channel ids
    message: Message
    posts: tuple[tuple[str, str, dict], ...] = ()  # (outbox key, channel, payload) per copy


def notify_breakers(
    session_factory: sessionmaker[Session],
    settings: Settings,
    now: datetime,
    findings: Iterable[FindingLike],
    *,
    dry_run: bool = False,
) -> list[BreakerNotice]:
    """Fire the breakers these findings trip and queue their cards; re-arm those that cleared.

    With `dry_run`, nothing is written: the notices say what would be sent.
    """
    findings = list(findings)
    with_findings = {finding.workload for finding in findings if finding.workload}
    notices: list[BreakerNotice] = []
    for slug in _candidates(session_factory, with_findings, now):
        try:
            with _unit(session_factory, dry_run) as session:
                notice = _observe_one(session, slug, settings, now, findings, dry_run)
        except BadInput as error:  # one workload's bad breaker entry must not stop the rest
            log.warning("breaker of %s skipped: %s", slug, error)
            continue
        if notice is not None:
            notices.append(notice)
    return notices


def refresh_breaker_copies(session_factory: sessionmaker[Session], slug: str, now: datetime) -> int:
    """Queue a `chat.update` of every copy of the current firing's card to its new state.

    Called after someone acted, so the owner's and every admin's copy say the same thing.
    Returns how many updates were queued.
    """
    with transaction(session_factory) as session:
        workload = _workload(session, slug)
        if workload is None:
            return 0
        state = load_state(workload)
        if state.firing_id is None:
            return 0
        posts = session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.method == outbox.POST,
                OutboxMessage.idempotency_key.like(
                    f"{_firing_prefix(workload.slug, state.firing_id)}%"
                ),
            )
        ).all()
        message = breaker_message(breaker_card(workload, now))
        change = f"{state.status.value}:{(state.since or now).strftime('%Y%m%dT%H%M%S')}"
        for post in posts:
            outbox.enqueue(
                session,
                key=f"{post.idempotency_key}:update:{change}",
                method=outbox.UPDATE,
                channel=post.channel or "",
                payload={"ts_from": post.idempotency_key, **message.to_dict()},
                now=now,
            )
        return len(posts)


# ---- steps -----------------------------------------------------------------------------


def _candidates(
    session_factory: sessionmaker[Session], with_findings: set[str], now: datetime
) -> list[str]:
    """Workloads with a breaker that this check may move: findings, or fired and waiting."""
    slugs = []
    with session_factory() as session:
        rows = session.execute(
            select(Workload.slug, Workload.breaker).where(
                Workload.status != WorkloadStatus.RETIRED.value
            )
        ).all()
    for slug, breaker in rows:
        if not breaker:
            continue
        status = state_of(breaker).effective(now).status
        if slug in with_findings or status is Status.FIRED:
            slugs.append(slug)
    return sorted(slugs)


def _observe_one(
    session: Session,
    slug: str,
    settings: Settings,
    now: datetime,
    findings: list[FindingLike],
    dry_run: bool,
) -> BreakerNotice | None:
    workload = lock_workload(session, slug)
    if breaker_policy(workload) is None:
        return None
    fired = observe(session, workload, findings, now)
    if fired is None:
        return None
    state, triggers = fired
    card = breaker_card(workload, now)
    message = breaker_message(card)
    recipients, posts = [], []
    for target, audience in _recipients(workload, settings):
        recipients.append(target)
        body = breaker_message(card, audience=audience) if audience else message
        key = f"{_firing_prefix(workload.slug, state.firing_id or '')}{target}"
        payload = {**body.to_dict(), "unfurl_links": False}
        posts.append((key, target, payload))
        if not dry_run:
            outbox.enqueue(
                session, key=key, method=outbox.POST, channel=target, payload=payload, now=now
            )
    return BreakerNotice(
        slug=workload.slug,
        firing_id=state.firing_id or "",
        triggers=tuple(trigger.summary for trigger in triggers),
        recipients=tuple(recipients),
        message=message,
        posts=tuple(posts),
    )


def _recipients(workload: Workload, settings: Settings) -> list[tuple[str, str | None]]:
    """(channel or user id, audience line or None) for each copy of the card."""
    targets: list[tuple[str, str | None]] = []
    for person in (workload.owner, workload.backup_owner):
        if person is not None and person.active and person.slack_id:
            targets.append((person.slack_id, None))
            break  # the backup owner only when the owner cannot be reached
    users = {target for target, _ in targets}
    for admin in sorted(settings.admins):
        if admin.startswith("S"):
            continue
        if admin not in users:
            targets.append((admin, None))
            users.add(admin)
    groups = sorted(admin for admin in settings.admins if admin.startswith("S"))
    channel = settings.governance_channel
    if channel and groups:
        mentions = " ".join(usergroup_mention(group) for group in groups)
        targets.append((channel, f"For the governance admins: {mentions}"))
    elif channel and not targets:
        targets.append((channel, "Nobody owns this workload, so it comes to the channel."))
    return targets


def _workload(session: Session, slug: str) -> Workload | None:
    return session.scalar(
        select(Workload)
        .where(Workload.slug == slug)
        .options(selectinload(Workload.owner), selectinload(Workload.backup_owner))
    )


def _firing_prefix(slug: str, firing_id: str) -> str:
    return f"{KEY_PREFIX}:{slug}:{firing_id}:"


@contextmanager
def _unit(session_factory: sessionmaker[Session], dry_run: bool) -> Iterator[Session]:
    """A transaction, or (dry run) a session whose changes are always rolled back."""
    if not dry_run:
        with transaction(session_factory) as session:
            yield session
        return
    session = session_factory()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


__all__ = ["BreakerNotice", "notify_breakers", "refresh_breaker_copies"]

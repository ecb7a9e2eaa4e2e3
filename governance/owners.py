"""Owners, database side: who needs a refresh from Slack, what a Slack answer changes, and who
is due a weekly digest in their own time zone. No Slack calls here (see bot/owner_refresh.py).

Refresh policy (the c7n-mailer pattern, in the database): people with a Slack id are checked
daily with `users.info`; people known only by email are resolved with `users.lookupByEmail`,
and a miss is remembered (`checked_at`) so it is retried weekly, not on every run. A Slack
user that is deleted, or no longer exists, makes the person inactive; the governance checks
then report their workloads as `owner_inactive`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from llmgov.governance.audit import record
from llmgov.governance.outbox import digest_key, has_key_or_parts
from llmgov.models.registry import Person, Workload, WorkloadStatus

log = logging.getLogger("llmgov.owners")

ACTOR = "system:owner-refresh"
# A little under a day, so a daily job at a fixed hour always finds yesterday's checks due.
REFRESH_EVERY = timedelta(hours=20)
MISS_RETRY = timedelta(days=7)
UTC_ZONE = ZoneInfo("UTC")


@dataclass(frozen=True)
class RefreshTarget:
    person_id: int
    slack_id: str | None
    email: str | None


def people_to_refresh(
    session: Session,
    now: datetime,
    *,
    every: timedelta = REFRESH_EVERY,
    miss_retry: timedelta = MISS_RETRY,
    limit: int | None = None,
) -> list[RefreshTarget]:
    """People due a Slack check, never-checked first."""
    due_by_id = and_(
        Person.slack_id.is_not(None),
        or_(Person.checked_at.is_(None), Person.checked_at <= now - every),
    )
    due_by_email = and_(
        Person.slack_id.is_(None),
        Person.email.is_not(None),
        or_(Person.checked_at.is_(None), Person.checked_at <= now - miss_retry),
    )
    query = (
        select(Person.id, Person.slack_id, Person.email)
        .where(or_(due_by_id, due_by_email))
        .order_by(Person.checked_at.is_not(None), Person.checked_at, Person.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return [RefreshTarget(*row) for row in session.execute(query)]


def _display_name(user: dict[str, Any]) -> str | None:
    profile = user.get("profile") or {}
    return user.get("real_name") or profile.get("real_name") or user.get("name") or None


def apply_user_info(
    session: Session, person_id: int, user: dict[str, Any] | None, now: datetime
) -> str:
    """Apply a `users.info` answer (None: `user_not_found`). Returns what changed:
    'deactivated', 'reactivated', 'updated' or 'unchanged'."""
    person = session.get(Person, person_id)
    if person is None:
        return "unchanged"
    was_active = person.active
    before = {"active": person.active, "tz": person.tz, "name": person.name}
    if user is None:
        person.active = False
    else:
        person.active = not user.get("deleted", False)
        person.tz = user.get("tz") or person.tz
        person.name = _display_name(user) or person.name
    person.checked_at = now
    after = {"active": person.active, "tz": person.tz, "name": person.name}
    if was_active and not person.active:
        outcome = "deactivated"
        reason = "Slack user deleted" if user is not None else "Slack user not found"
        record(
            session,
            actor=ACTOR,
            action="person.deactivated",
            entity="person",
            entity_key=person.slack_id or str(person.id),
            before=before,
            after=after,
            reason=reason,
        )
    elif not was_active and person.active:
        outcome = "reactivated"
        record(
            session,
            actor=ACTOR,
            action="person.reactivated",
            entity="person",
            entity_key=person.slack_id or str(person.id),
            before=before,
            after=after,
        )
    else:
        outcome = "updated" if before != after else "unchanged"
    session.flush()
    return outcome


def apply_lookup(
    session: Session, person_id: int, user: dict[str, Any] | None, now: datetime
) -> str:
    """Apply a `users.lookupByEmail` answer (None: `users_not_found`, remembered for a week).

    Returns 'resolved', 'merged' (the Slack id already belonged to another person: the two
    become one, keeping the Slack person and moving workloads over) or 'missed'.
    """
    person = session.get(Person, person_id)
    if person is None:
        return "missed"
    person.checked_at = now
    if user is None:
        session.flush()
        return "missed"
    slack_id = user["id"]
    other = session.scalar(select(Person).where(Person.slack_id == slack_id))
    if other is not None and other.id != person.id:
        _merge_into(session, source=person, target=other)
        apply_user_info(session, other.id, user, now)
        return "merged"
    before = {"slack_id": person.slack_id}
    person.slack_id = slack_id
    apply_user_info(session, person.id, user, now)
    record(
        session,
        actor=ACTOR,
        action="person.resolved",
        entity="person",
        entity_key=person.email or str(person.id),
        before=before,
        after={"slack_id": slack_id},
    )
    session.flush()
    return "resolved"


def _merge_into(session: Session, *, source: Person, target: Person) -> None:
    """`source` (known by email) is `target` (known by Slack id): keep one person."""
    for column in (Workload.owner_id, Workload.backup_owner_id):
        session.execute(update(Workload).where(column == source.id).values({column.key: target.id}))
    email = source.email
    record(
        session,
        actor=ACTOR,
        action="person.merged",
        entity="person",
        entity_key=target.slack_id or str(target.id),
        before={"email_person": source.id, "email": email},
        after={"person": target.id},
    )
    session.delete(source)
    session.flush()  # frees the unique email before the target takes it
    if target.email is None:
        target.email = email
    session.flush()


# ---- weekly digests in each owner's own time zone ----------------------------------------


def zone_of(tz: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(tz) if tz else UTC_ZONE
    except (ZoneInfoNotFoundError, ValueError):
        return UTC_ZONE


def digest_slot(local: datetime, weekday: int, hour: int) -> datetime:
    """This ISO week's digest time (local): `weekday` (0 = Monday) at `hour`:00."""
    monday = local.date() - timedelta(days=local.weekday())
    day = monday + timedelta(days=weekday)
    return datetime(day.year, day.month, day.day, hour, tzinfo=local.tzinfo)


@dataclass(frozen=True)
class DigestDue:
    slack_id: str
    local_week: date  # a day in the owner's local ISO week the digest is for
    key: str  # governance.outbox.digest_key for that week


def owners_due_digest(
    session: Session,
    now: datetime,
    *,
    weekday: int = 0,
    hour: int = 9,
    window: timedelta = timedelta(hours=24),
) -> list[DigestDue]:
    """Active owners for whom it is now, in their own time zone, between this week's digest
    slot and `window` later, and who have no digest for this ISO week in the outbox yet.

    Run hourly, this sends each owner one digest a week at their local slot; a worker that
    was down at the slot catches up within `window`.
    """
    owners = session.execute(
        select(Person.slack_id, Person.tz)
        .where(
            Person.active.is_(True),
            Person.slack_id.is_not(None),
            Person.id.in_(
                select(Workload.owner_id).where(
                    Workload.owner_id.is_not(None),
                    Workload.status != WorkloadStatus.RETIRED.value,
                )
            ),
        )
        .order_by(Person.slack_id)
    ).all()
    due: list[DigestDue] = []
    for slack_id, tz in owners:
        local = now.astimezone(zone_of(tz))
        slot = digest_slot(local, weekday, hour)
        if not slot <= local < slot + window:
            continue
        key = digest_key(slack_id, local.date())
        if has_key_or_parts(session, key):
            continue
        due.append(DigestDue(slack_id=slack_id, local_week=local.date(), key=key))
    return due

"""Database leases so that two schedulers (two workers, or serve + worker) never run one job.

A lease is a row per job id: who holds it and until when. Taking it is one atomic statement
on SQLite and PostgreSQL alike: a conditional UPDATE (the lease has expired, or we already
hold it) whose row count says whether we won, or, for a job never leased before, an INSERT
that at most one contender can make (the job id is the primary key).

`min_interval` also stops a second scheduler from re-running a job that another one has
just finished (both fire at 09:00; the slower one finds it done at 09:00:02).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from llmgov.models.base import transaction
from llmgov.models.governance import JobLease


def acquire(
    session_factory: sessionmaker[Session],
    job_id: str,
    holder: str,
    ttl: timedelta,
    now: datetime,
    min_interval: timedelta | None = None,
) -> bool:
    """Take (or extend) the lease on `job_id` for `ttl`; True when `holder` now holds it.

    Refused while another holder's lease is unexpired, or, with `min_interval`, when the job
    last completed less than `min_interval` before `now`.
    """
    expires = now + ttl
    with transaction(session_factory) as session:
        conditions = [
            JobLease.job_id == job_id,
            or_(JobLease.expires_at <= now, JobLease.holder == holder),
        ]
        if min_interval is not None:
            conditions.append(
                or_(JobLease.last_run_at.is_(None), JobLease.last_run_at <= now - min_interval)
            )
        taken = session.execute(
            update(JobLease)
            .where(*conditions)
            .values(holder=holder, expires_at=expires)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount == 1:
            return True
        inserted = _insert_if_absent(session, job_id, holder, expires)
    return inserted


def _insert_if_absent(session: Session, job_id: str, holder: str, expires: datetime) -> bool:
    dialect = session.get_bind().dialect.name
    insert = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}.get(dialect)
    if insert is None:
        raise NotImplementedError(f"job leases support SQLite and PostgreSQL, not {dialect}")
    values = {"job_id": job_id, "holder": holder, "expires_at": expires}
    # RETURNING says whether our row went in (rowcount is not reliable for INSERT here).
    table = JobLease.__table__
    result = session.execute(
        insert(table).values(**values).on_conflict_do_nothing().returning(table.c.job_id)
    )
    return result.first() is not None


def release(
    session_factory: sessionmaker[Session],
    job_id: str,
    holder: str,
    now: datetime,
    completed: bool = True,
) -> bool:
    """Give the lease back (it expires now); with `completed`, record the run at `now`.

    False when `holder` no longer held it (it expired and someone else took it).
    """
    values: dict[str, object] = {"expires_at": now}
    if completed:
        values["last_run_at"] = now
    with transaction(session_factory) as session:
        result = session.execute(
            update(JobLease)
            .where(JobLease.job_id == job_id, JobLease.holder == holder)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


def holder_of(session_factory: sessionmaker[Session], job_id: str, now: datetime) -> str | None:
    """Who holds an unexpired lease on `job_id`, if anyone."""
    with session_factory() as session:
        lease = session.get(JobLease, job_id)
        if lease is None or lease.expires_at <= now:
            return None
        return lease.holder

"""Write locks on workload rows, taken before the rows are read.

A change of a workload reads it, decides, writes it and audits the change with the "before"
it read. Two changes of one workload at once (two people in Slack, a click and the check
job, a registry import) must therefore run one after the other, the second reading what
the first left; otherwise both audit the same "before" and the audit trail loses a step.
Lock first, then read, then write, all in one transaction: the lock is held until it ends.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from llmgov.models.registry import Workload


def lock_workloads(session: Session, slugs: Iterable[str]) -> None:
    """Write-lock the workloads called `slugs` (those that exist) until the transaction ends.

    PostgreSQL: SELECT ... FOR UPDATE, in id order, so that two transactions locking
    overlapping sets take the locks in the same order and cannot deadlock. SQLite has no
    row locks: an UPDATE that changes nothing takes the database's write lock, which is
    the same guarantee for every row at once; done before any read, it also spares SQLite's
    WAL a stale read snapshot. Other writers wait (SQLite's busy timeout, PostgreSQL's lock
    wait), they are not refused.
    """
    wanted = sorted(set(slugs))
    if not wanted:
        return
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            update(Workload)
            .where(Workload.slug.in_(wanted))
            .values(updated_at=Workload.updated_at)
            .execution_options(synchronize_session=False)
        )
        return
    session.execute(
        select(Workload.id).where(Workload.slug.in_(wanted)).order_by(Workload.id).with_for_update()
    )


__all__ = ["lock_workloads"]

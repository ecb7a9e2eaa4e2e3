"""Each source's last success and last error per scope (account/region, URL, file), for
`stale_data` findings and for `llmgov collect` to say what failed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from llmgov.collectors.upserts import dialect_insert
from llmgov.models.facts import SourceStatus

ERROR_TEXT_MAX = 2000  # keep one bad response from filling the table
SCOPE_MAX = 200  # SourceStatus.scope is String(200)


def record_success(session: Session, source: str, scope: str, at: datetime, rows: int) -> None:
    """The source delivered for this scope at `at`; the last error is kept for history."""
    statement = dialect_insert(session, SourceStatus.__table__).values(
        source=source, scope=scope[:SCOPE_MAX], last_success_at=at, rows_last_run=rows
    )
    statement = statement.on_conflict_do_update(
        index_elements=["source", "scope"],
        set_={"last_success_at": at, "rows_last_run": rows},
    )
    session.execute(statement)


def record_error(session: Session, source: str, scope: str, at: datetime, error: str) -> None:
    """The source failed for this scope at `at` with a message a person can act on."""
    text = error[:ERROR_TEXT_MAX]
    statement = dialect_insert(session, SourceStatus.__table__).values(
        source=source, scope=scope[:SCOPE_MAX], last_error_at=at, last_error=text, rows_last_run=0
    )
    statement = statement.on_conflict_do_update(
        index_elements=["source", "scope"],
        set_={"last_error_at": at, "last_error": text, "rows_last_run": 0},
    )
    session.execute(statement)


def last_success(session: Session, source: str, scope: str) -> datetime | None:
    return session.scalar(
        select(SourceStatus.last_success_at).where(
            SourceStatus.source == source, SourceStatus.scope == scope
        )
    )


def statuses(session: Session) -> list[SourceStatus]:
    return list(
        session.scalars(select(SourceStatus).order_by(SourceStatus.source, SourceStatus.scope))
    )

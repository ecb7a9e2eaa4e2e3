"""Decision records: a `/llm-decide` answer someone chose to keep (who, when, inputs, outputs).

Recording is audited in the same transaction as the record itself. `/llm-owner show` reads
them back with `recent_decisions` and `count_decisions`; the weekly digest with its own query.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from llmgov.governance import audit
from llmgov.models.base import utcnow
from llmgov.models.errors import BadInput
from llmgov.models.governance import DecisionRecord
from llmgov.models.registry import Workload

RECOMMENDATIONS = ("bedrock", "self_hosted", "hybrid", "fix_ownership_first", "insufficient_data")
WHAT_IF = "what-if"


def record_decision(
    session: Session,
    *,
    decided_by: str,
    workload_slug: str | None,
    recommendation: str,
    inputs: dict[str, Any],
    outputs: dict[str, Any],
    note: str | None = None,
    at: datetime | None = None,
) -> DecisionRecord:
    """Add a decision record and its audit event to the session (the caller commits)."""
    if recommendation not in RECOMMENDATIONS:
        raise BadInput(
            f"{recommendation!r} is not a recommendation; expected one of "
            f"{', '.join(RECOMMENDATIONS)}"
        )
    if not decided_by:
        raise BadInput("a decision needs the Slack user id of whoever recorded it")
    workload_id = None
    if workload_slug is not None:
        workload_id = session.scalar(select(Workload.id).where(Workload.slug == workload_slug))
        if workload_id is None:
            raise BadInput(f"there is no workload {workload_slug!r} to record a decision for")
    record = DecisionRecord(
        workload_id=workload_id,
        decided_by=decided_by,
        decided_at=at or utcnow(),
        recommendation=recommendation,
        inputs=inputs,
        outputs=outputs,
        note=note,
    )
    session.add(record)
    session.flush()
    audit.record(
        session,
        actor=decided_by,
        action="decision.record",
        entity="workload" if workload_slug else "decision",
        entity_key=workload_slug or f"{WHAT_IF}:{record.id}",
        after={"decision_id": record.id, "recommendation": recommendation},
    )
    return record


def recent_decisions(
    session: Session, workload_id: int | None = None, *, limit: int = 5
) -> list[DecisionRecord]:
    """The latest decisions, newest first (for one workload when `workload_id` is given)."""
    statement = select(DecisionRecord).order_by(
        DecisionRecord.decided_at.desc(), DecisionRecord.id.desc()
    )
    if workload_id is not None:
        statement = statement.where(DecisionRecord.workload_id == workload_id)
    return list(session.scalars(statement.limit(limit)))


def count_decisions(session: Session, workload_id: int) -> int:
    """How many decisions were recorded for the workload."""
    statement = select(func.count()).where(DecisionRecord.workload_id == workload_id)
    return session.scalar(statement) or 0


__all__ = ["RECOMMENDATIONS", "count_decisions", "recent_decisions", "record_decision"]

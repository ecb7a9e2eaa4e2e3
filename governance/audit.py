"""The audit trail: every change of owner, budget, status or rules, and every refusal."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from llmgov.models.registry import AuditEvent


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_key: str,
    before: Any = None,
    after: Any = None,
    outcome: str = "applied",
    reason: str | None = None,
) -> AuditEvent:
    """Add one audit event to the session (committed with the change it describes)."""
    event = AuditEvent(
        actor=actor,
        action=action,
        entity=entity,
        entity_key=entity_key,
        before=before,
        after=after,
        outcome=outcome,
        reason=reason,
    )
    session.add(event)
    return event


def refusal(
    session: Session, *, actor: str, action: str, entity: str, entity_key: str, reason: str
) -> AuditEvent:
    """Record that `actor` was refused `action`; committed even though nothing changed."""
    return record(
        session,
        actor=actor,
        action=action,
        entity=entity,
        entity_key=entity_key,
        outcome="refused",
        reason=reason,
    )

"""Governance state: alerts with a lifecycle, the Slack outbox, decision records, job leases."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from llmgov.models.base import Base, utcnow


class AlertStatus(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    SNOOZED = "snoozed"
    RESOLVED = "resolved"


class Alert(Base):
    """One finding over time, keyed by its fingerprint: notified once, updated in place."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(48))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=AlertStatus.OPEN.value)
    workload_id: Mapped[int | None] = mapped_column(
        ForeignKey("workloads.id", ondelete="SET NULL"), index=True
    )
    amount: Mapped[Decimal] = mapped_column(default=Decimal(0))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column()
    acknowledged_by: Mapped[str | None] = mapped_column(String(32))
    snoozed_until: Mapped[datetime | None] = mapped_column()
    notified_severity: Mapped[str | None] = mapped_column(String(16))
    channel_id: Mapped[str | None] = mapped_column(String(32))
    message_ts: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (Index("ix_alerts_status", "status"),)


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # gave up after the retry budget; kept for inspection and replay


class OutboxMessage(Base):
    """Every Slack message, persisted before it is sent; marked sent with its channel and ts."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    method: Mapped[str] = mapped_column(String(48))  # chat.postMessage, chat.update, ...
    channel: Mapped[str | None] = mapped_column(String(32))  # channel id, or user id for a DM
    payload: Mapped[dict[str, Any]] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_channel: Mapped[str | None] = mapped_column(String(32))
    sent_ts: Mapped[str | None] = mapped_column(String(32))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (Index("ix_outbox_status_next", "status", "next_attempt_at"),)


class DecisionRecord(Base):
    """A recorded /llm-decide answer: who decided, when, from which inputs, with what outputs."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    workload_id: Mapped[int | None] = mapped_column(
        ForeignKey("workloads.id", ondelete="SET NULL"), index=True
    )
    decided_by: Mapped[str] = mapped_column(String(32))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    recommendation: Mapped[str] = mapped_column(String(32))
    inputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    outputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    note: Mapped[str | None] = mapped_column(Text)


class JobLease(Base):
    """A database lease so that two schedulers never run the same job at once."""

    __tablename__ = "job_leases"

    job_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column()
    last_run_at: Mapped[datetime | None] = mapped_column()

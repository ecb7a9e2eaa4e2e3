"""Signatures of accepted Slack requests, so a replay is refused by every replica and after
a restart (`bot/replay_guard.py`); acknowledged requests until they are answered, so a
restarted server or another replica answers what a killed one left (`bot/answer_journal.py`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from llmgov.models.base import Base


class SeenRequest(Base):
    """One accepted request signature, kept until its timestamp is too old to verify."""

    __tablename__ = "seen_requests"
    __table_args__ = (Index("ix_seen_requests_expires_at", "expires_at"),)

    signature: Mapped[str] = mapped_column(String(100), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column()


class PendingAnswer(Base):
    """A verified request (slash command or button) recorded before its ack, until answered.

    `queued_at` is set when its answer was handed to the answer pool (only those are
    re-run after a crash: a request answered in the listener thread, such as opening a
    modal, is done by the time the ack returns); `sending_at` when its answer's POST to the
    response_url began (from then on it is never re-run: Slack may have it already);
    `holder` is the process answering it.
    """

    __tablename__ = "pending_answers"
    __table_args__ = (Index("ix_pending_answers_answered_at", "answered_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    response_url: Mapped[str] = mapped_column(String(500), unique=True)
    body: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(100))
    holder: Mapped[str] = mapped_column(String(200))
    lease_until: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column()
    queued_at: Mapped[datetime | None] = mapped_column()
    sending_at: Mapped[datetime | None] = mapped_column()  # its first POST to the response_url
    answered_at: Mapped[datetime | None] = mapped_column()
    attempts: Mapped[int] = mapped_column(default=0)


__all__ = ["PendingAnswer", "SeenRequest"]

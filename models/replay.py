"""Signatures of accepted Slack requests, so a replay is refused by every replica and after
a restart (`bot/replay_guard.py`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from llmgov.models.base import Base


class SeenRequest(Base):
    """One accepted request signature, kept until its timestamp is too old to verify."""

    __tablename__ = "seen_requests"
    __table_args__ = (Index("ix_seen_requests_expires_at", "expires_at"),)

    signature: Mapped[str] = mapped_column(String(100), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column()


__all__ = ["SeenRequest"]

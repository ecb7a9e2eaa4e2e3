"""The direct-message channel of each Slack user the bot has written to.

`chat.postMessage` accepts a user id as its channel and answers with the DM's channel id
(D…); the sender stores it here, so later look-ups (an earlier copy in the DM's history, a
file upload, `chat.update`) need no `conversations.open` (Tier 3).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from llmgov.models.base import Base, utcnow


class DmChannel(Base):
    __tablename__ = "dm_channels"

    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


def remember_dm_channel(session: Session, user: str, channel: str, now: datetime) -> None:
    """Insert or update the user's DM channel (safe when two senders store it at once)."""
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(DmChannel).values(user_id=user, channel_id=channel, updated_at=now)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[DmChannel.user_id],
            set_={"channel_id": channel, "updated_at": now},
        )
    )

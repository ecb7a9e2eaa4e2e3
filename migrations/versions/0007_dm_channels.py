"""dm_channels: each Slack user's DM channel id, as chat.postMessage returned it

The sender posts a DM with the user id as its channel and stores the D… channel id the
answer carries, so it never needs `conversations.open` (Tier 3) for a post. The table is
filled from the DMs already sent (the outbox's sent rows) so no known channel is forgotten.

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-08 02:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import llmgov.models.base

revision: str = "0007"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dm_channels",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("updated_at", llmgov.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_dm_channels")),
    )
    op.execute(
        "INSERT INTO dm_channels (user_id, channel_id, updated_at) "
        "SELECT channel, MAX(sent_channel), MAX(sent_at) FROM outbox "
        "WHERE status = 'sent' AND sent_channel LIKE 'D%' AND sent_at IS NOT NULL "
        "AND (channel LIKE 'U%' OR channel LIKE 'W%') GROUP BY channel"
    )


def downgrade() -> None:
    op.drop_table("dm_channels")

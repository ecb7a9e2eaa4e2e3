"""seen request signatures (replay protection shared by replicas and restarts) and pending
answers (acknowledged requests answered after a crash)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 03:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import llmgov.models.base

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "seen_requests",
        sa.Column("signature", sa.String(length=100), nullable=False),
        sa.Column("expires_at", llmgov.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("signature", name=op.f("pk_seen_requests")),
    )
    op.create_index("ix_seen_requests_expires_at", "seen_requests", ["expires_at"])
    utc = llmgov.models.base.UTCDateTime(timezone=True)
    op.create_table(
        "pending_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("response_url", sa.String(length=500), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("lease_until", utc, nullable=False),
        sa.Column("created_at", utc, nullable=False),
        sa.Column("queued_at", utc, nullable=True),
        sa.Column("sending_at", utc, nullable=True),
        sa.Column("answered_at", utc, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_answers")),
        sa.UniqueConstraint("response_url", name=op.f("uq_pending_answers_response_url")),
    )
    op.create_index("ix_pending_answers_answered_at", "pending_answers", ["answered_at"])


def downgrade() -> None:
    op.drop_index("ix_pending_answers_answered_at", table_name="pending_answers")
    op.drop_table("pending_answers")
    op.drop_index("ix_seen_requests_expires_at", table_name="seen_requests")
    op.drop_table("seen_requests")

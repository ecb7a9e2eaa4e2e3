"""the spend ledger: charge kinds, one source per account and day, 9-decimal money

- cost_facts.charge_kind: `usage` or an adjustment (credit, refund, tax, fee, purchase,
  discount, adjustment) that never counts as LLM spend. Existing billing-export rows are
  classified from the ChargeCategory / line item type kept in their dimensions.
- cost_facts.superseded: true where another source counts for the fact's account and day
  (an export over Cost Explorer; between exports, the one imported last). Computed here for
  every existing row, with the rule of `models/ledger.py` written out in SQL.
- cost_facts.cost: Numeric(24, 9) on every database (the imports sum in 1e-9 units; it was
  Numeric(20, 8)).
- The two covering indexes also hold charge_kind and superseded, and (account, day, source)
  serves the precedence.
- (source, day) / (source, hour) indexes: each source's newest data in a few index seeks
  (freshness, read by every answer).
- check_watermarks: what each check has evaluated (facts collected through when), so a run
  examines every day that arrived since the last one.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08 02:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import llmgov.models.base

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# FOCUS ChargeCategory and CUR 2.0 line item types, as of this revision
KINDS = {
    "usage": "usage",
    "discountedusage": "usage",
    "savingsplancoveredusage": "usage",
    "credit": "credit",
    "refund": "refund",
    "tax": "tax",
    "purchase": "purchase",
    "adjustment": "adjustment",
    "fee": "fee",
    "rifee": "purchase",
    "savingsplanrecurringfee": "purchase",
    "savingsplanupfrontfee": "purchase",
    "savingsplannegation": "discount",
    "bundleddiscount": "discount",
    "edpdiscount": "discount",
    "privateratediscount": "discount",
    "distributordiscount": "discount",
}
OLD_INDEXES = {
    "ix_cost_facts_workload_day": ["workload_id", "day", "cost", "is_llm"],
    "ix_cost_facts_day_workload": ["day", "workload_id", "cost", "is_llm"],
}
SUPERSEDED = """
UPDATE cost_facts SET superseded = EXISTS (
  SELECT 1 FROM cost_facts AS o
  WHERE o.day = cost_facts.day
    AND o.account IS NOT DISTINCT FROM cost_facts.account
    AND o.source <> cost_facts.source
    AND ({rank_o} < {rank_c}
         OR ({rank_o} = {rank_c}
             AND (o.collected_at > cost_facts.collected_at
                  OR (o.collected_at = cost_facts.collected_at
                      AND o.source < cost_facts.source)))))
"""


def _rank(alias: str) -> str:
    return (
        f"(CASE WHEN {alias}.source IN ('focus', 'cur2', 'athena') THEN 1 "
        f"WHEN {alias}.source = 'cost_explorer' THEN 2 ELSE 3 END)"
    )


def _kind(category) -> str:
    key = "".join(ch for ch in str(category or "").lower() if ch.isalnum())
    return "usage" if not key else KINDS.get(key, "adjustment")


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        "check_watermarks",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("collected_through", llmgov.models.base.UTCDateTime(timezone=True)),
        sa.Column("evaluated_through", sa.Date()),
        sa.Column("updated_at", llmgov.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_check_watermarks")),
    )
    with op.batch_alter_table("cost_facts") as batch:
        batch.add_column(
            sa.Column("charge_kind", sa.String(16), nullable=False, server_default="usage")
        )
        batch.add_column(
            sa.Column("superseded", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.alter_column(
            "cost",
            type_=sa.Numeric(24, 9),
            existing_type=sa.Numeric(20, 8),
            existing_nullable=False,
        )
        for name in OLD_INDEXES:
            batch.drop_index(name)
        batch.create_index(
            "ix_cost_facts_workload_day",
            ["workload_id", "day", "cost", "is_llm", "charge_kind", "superseded"],
        )
        batch.create_index(
            "ix_cost_facts_day_workload",
            ["day", "workload_id", "cost", "is_llm", "charge_kind", "superseded"],
        )
        batch.create_index("ix_cost_facts_account_day", ["account", "day", "source"])
        batch.create_index("ix_cost_facts_source_day", ["source", "day"])
    op.create_index("ix_usage_facts_source_hour", "usage_facts", ["source", "hour"])
    op.create_index("ix_gpu_facts_source_hour", "gpu_facts", ["source", "hour"])

    facts = sa.table(
        "cost_facts",
        sa.column("id", sa.Integer),
        sa.column("source", sa.String),
        sa.column("dimensions", sa.JSON),
        sa.column("charge_kind", sa.String),
    )
    rows = bind.execute(
        sa.select(facts.c.id, facts.c.dimensions).where(facts.c.source != "cost_explorer")
    )
    changes: dict[str, list[int]] = {}
    for fact_id, dimensions in rows:
        kind = _kind((dimensions or {}).get("charge_category"))
        if kind != "usage":
            changes.setdefault(kind, []).append(fact_id)
    for kind, ids in changes.items():
        for start in range(0, len(ids), 500):
            bind.execute(
                sa.update(facts)
                .where(facts.c.id.in_(ids[start : start + 500]))
                .values(charge_kind=kind)
            )
    statement = SUPERSEDED.format(rank_o=_rank("o"), rank_c=_rank("cost_facts"))
    if bind.dialect.name == "sqlite":
        statement = statement.replace("IS NOT DISTINCT FROM", "IS")
    op.execute(statement)


def downgrade() -> None:
    op.drop_table("check_watermarks")
    op.drop_index("ix_gpu_facts_source_hour", table_name="gpu_facts")
    op.drop_index("ix_usage_facts_source_hour", table_name="usage_facts")
    with op.batch_alter_table("cost_facts") as batch:
        batch.drop_index("ix_cost_facts_source_day")
        batch.drop_index("ix_cost_facts_account_day")
        batch.drop_index("ix_cost_facts_day_workload")
        batch.drop_index("ix_cost_facts_workload_day")
        for name, columns in OLD_INDEXES.items():
            batch.create_index(name, columns)
        batch.alter_column(
            "cost",
            type_=sa.Numeric(20, 8),
            existing_type=sa.Numeric(24, 9),
            existing_nullable=False,
        )
        batch.drop_column("superseded")
        batch.drop_column("charge_kind")

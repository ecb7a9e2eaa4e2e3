"""fact indexes for /llm-cost at scale

Composite indexes that hold what `/llm-cost` sums, so its scans over hundreds of thousands of
fact rows (10,000 workloads) are read from the index alone:
- cost_facts (workload_id, day, cost, is_llm): a workload's or team's cost over a range of
  days, and the per-workload ranking of `all`; replaces ix_cost_facts_workload_id (its prefix);
- cost_facts (day, workload_id, cost, is_llm): every workload's daily totals over a range of
  days; replaces ix_cost_facts_day (its prefix);
- usage_facts (workload_id, hour, estimated_cost): token estimates over a range of hours;
  replaces ix_usage_facts_workload_id (its prefix).
The new indexes are created before the ones they replace are dropped, so the foreign keys
keep an index at every step. Downgrade restores the single-column indexes.

On SQLite the two tables are then analysed: without statistics the planner does not know
that a workload has many rows, so it neither skip-scans the workload-first indexes for
`all` nor prefers the covering ones (it sorted 480,000 hourly rows of `ix_usage_facts_hour`
instead). `analysis_limit` keeps it to a sample: milliseconds even at millions of rows.
PostgreSQL keeps its statistics per column, which do not change here (autovacuum refreshes
them).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 09:20:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, new index, its columns, the single-column indexes it replaces and their columns)
REPLACEMENTS = (
    (
        "cost_facts",
        "ix_cost_facts_workload_day",
        ["workload_id", "day", "cost", "is_llm"],
        {"ix_cost_facts_workload_id": ["workload_id"]},
    ),
    (
        "cost_facts",
        "ix_cost_facts_day_workload",
        ["day", "workload_id", "cost", "is_llm"],
        {"ix_cost_facts_day": ["day"]},
    ),
    (
        "usage_facts",
        "ix_usage_facts_workload_hour",
        ["workload_id", "hour", "estimated_cost"],
        {"ix_usage_facts_workload_id": ["workload_id"]},
    ),
)


def upgrade() -> None:
    for table, name, columns, replaced in REPLACEMENTS:
        op.create_index(name, table, columns, unique=False)
        for old_name in replaced:
            op.drop_index(old_name, table_name=table)
    if op.get_bind().dialect.name == "sqlite":
        op.execute("PRAGMA analysis_limit = 1000")
        for table in sorted({table for table, *_ in REPLACEMENTS}):
            op.execute(f"ANALYZE {table}")
        op.execute("PRAGMA analysis_limit = 0")


def downgrade() -> None:
    for table, name, _columns, replaced in reversed(REPLACEMENTS):
        for old_name, old_columns in replaced.items():
            op.create_index(old_name, table, old_columns, unique=False)
        op.drop_index(name, table_name=table)

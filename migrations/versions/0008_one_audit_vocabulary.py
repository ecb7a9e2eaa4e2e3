"""one audit vocabulary for workload changes made from a registry file and from Slack

Registry imports used to record `backup_owner.assign` where Slack records
`backup_owner.set`, bare values (`"U0ANA0001"`) where Slack records the workload's audited
fields (`{"owner": "U0ANA0001"}`), a budget as `{"monthly", "currency"}` where Slack
records `{"budget_monthly", "currency"}`, and retiring as `status.set` where Slack records
`workload.retire`. This rewrites those earlier rows into the one shape, so the history of a
workload reads the same whoever made the change. Downgrade keeps the rows as they are.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 02:40:00.000000
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

audit_events = sa.table(
    "audit_events",
    sa.column("id", sa.Integer),
    sa.column("action", sa.String),
    sa.column("entity", sa.String),
    sa.column("before", sa.JSON),
    sa.column("after", sa.JSON),
)

OLD_ACTIONS = ("owner.assign", "backup_owner.assign", "budget.set", "status.set")


def _budget(value: Any) -> Any:
    if isinstance(value, dict) and "monthly" in value:
        return {"budget_monthly": value["monthly"], "currency": value.get("currency")}
    if value is None:
        return {"budget_monthly": None}
    return value


def _wrapped(key: str, value: Any) -> Any:
    if isinstance(value, dict) and key in value:
        return value  # already the Slack shape
    return {key: value}


def _new_shape(action: str, before: Any, after: Any) -> tuple[str, Any, Any]:
    if action == "backup_owner.assign":
        return "backup_owner.set", _wrapped("backup_owner", before), _wrapped("backup_owner", after)
    if action == "owner.assign":
        return action, _wrapped("owner", before), _wrapped("owner", after)
    if action == "budget.set":
        return action, _budget(before), _budget(after)
    # status.set
    new_before, new_after = _wrapped("status", before), _wrapped("status", after)
    retired = new_after.get("status") == "retired"
    return ("workload.retire" if retired else action), new_before, new_after


def _rewrite(transform) -> None:
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(
            audit_events.c.id, audit_events.c.action, audit_events.c.before, audit_events.c.after
        ).where(audit_events.c.entity == "workload")
    ).all()
    for row in rows:
        changed = transform(row.action, row.before, row.after)
        if changed is None or changed == (row.action, row.before, row.after):
            continue
        action, before, after = changed
        connection.execute(
            audit_events.update()
            .where(audit_events.c.id == row.id)
            .values(action=action, before=before, after=after)
        )


def upgrade() -> None:
    def transform(action: str, before: Any, after: Any):
        if action not in OLD_ACTIONS:
            return None
        # Slack's own rows are already dicts with the field's key: left as they are
        return _new_shape(action, before, after)

    _rewrite(transform)


def downgrade() -> None:
    # Nothing to undo: the earlier code reads this shape too (it is the shape Slack always
    # wrote), and rows made from Slack and from a file can no longer be told apart.
    pass

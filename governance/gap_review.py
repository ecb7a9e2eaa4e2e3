"""The weekly ownership-gap review for leadership, as data: ranked by money at stake.

Rows, each with the spend behind it over the stake window (30 days by default):
- workloads that were discovered in the data, have no owner, or whose owner has left;
- workloads without a budget or an exit strategy (one row per workload, all its gaps listed);
- unattributed spend, one row per source series that no rule claims (the largest first);
- hybrids without a recorded decision: a workload served both by Bedrock and by its own
  GPUs, or a feature served by workloads on both, with no `/llm-decide` answer recorded.

The headline is the share of last week's LLM spend that has an active owner, and its trend
against the figure the previous review published (kept in the audit trail as
`gap_review.published`, so it reflects who owned what then, not now).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from llmgov.governance import audit
from llmgov.governance.checks import SELF_HOSTED, CheckContext, build_context, money
from llmgov.governance.findings import jsonable
from llmgov.governance.ledger import UNATTRIBUTED_SPEND, gap_kinds
from llmgov.governance.registry_view import GAP_LABELS, Gap, gaps_of
from llmgov.models.facts import CostFact
from llmgov.models.governance import DecisionRecord
from llmgov.models.ledger import billed_usage
from llmgov.models.registry import AuditEvent, Platform, Workload
from llmgov.models.series_keys import describe_series_key

PUBLISHED_ACTION = "gap_review.published"
HEADLINE_DAYS = 7
MAX_UNATTRIBUTED_ROWS = 10


class RowKind:
    """Row kinds, worst first (ties on money are broken in this order)."""

    DISCOVERED = Gap.DISCOVERED.value
    UNOWNED = Gap.UNOWNED.value
    OWNER_INACTIVE = Gap.OWNER_INACTIVE.value
    UNATTRIBUTED = "unattributed"
    HYBRID = "hybrid_without_decision"
    MISSING_BUDGET = Gap.MISSING_BUDGET.value
    MISSING_EXIT_STRATEGY = Gap.MISSING_EXIT_STRATEGY.value

    ORDER = (
        DISCOVERED,
        UNOWNED,
        OWNER_INACTIVE,
        UNATTRIBUTED,
        HYBRID,
        MISSING_BUDGET,
        MISSING_EXIT_STRATEGY,
    )


ROW_LABELS = {
    **{gap.value: label for gap, label in GAP_LABELS.items()},
    RowKind.UNATTRIBUTED: "unattributed spend",
    RowKind.HYBRID: "hybrid without a recorded decision",
}


@dataclass(frozen=True)
class GapRow:
    kind: str  # the worst gap (RowKind)
    amount: Decimal  # spend in the stake window
    currency: str
    workload: str | None = None  # slug (None for unattributed spend)
    name: str | None = None
    team: str | None = None
    platform: str | None = None
    owner: str | None = None  # Slack id of the (possibly departed) owner
    owner_name: str | None = None
    owner_active: bool = False
    gaps: tuple[str, ...] = ()  # every gap of the workload
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def claimable(self) -> bool:
        """Claim / Assign make sense: a workload without an active owner."""
        return self.workload is not None and not self.owner_active


@dataclass(frozen=True)
class GapReview:
    as_of: date
    window_days: int
    currency: str
    week_spend: Decimal  # all LLM spend in the last HEADLINE_DAYS days
    owned_week_spend: Decimal  # of which with an active owner
    previous_share: float | None  # the share the previous review published
    previous_as_of: date | None
    rows: tuple[GapRow, ...]
    unattributed_total: Decimal

    @property
    def owned_share(self) -> float | None:
        if self.week_spend <= 0:
            return None
        return float(self.owned_week_spend / self.week_spend)

    @property
    def trend(self) -> float | None:
        """Change in the owned share since the previous review, in percentage points."""
        if self.owned_share is None or self.previous_share is None:
            return None
        return round((self.owned_share - self.previous_share) * 100, 1)

    @property
    def at_stake(self) -> Decimal:
        return sum((row.amount for row in self.rows), Decimal(0))

    def counts(self) -> dict[str, int]:
        counts = {kind: 0 for kind in RowKind.ORDER}
        for row in self.rows:
            counts[row.kind] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return jsonable(
            {
                "as_of": self.as_of,
                "window_days": self.window_days,
                "currency": self.currency,
                "headline": {
                    "owned_share": self.owned_share,
                    "previous_share": self.previous_share,
                    "previous_as_of": self.previous_as_of,
                    "trend_points": self.trend,
                    "week_spend": self.week_spend,
                    "owned_week_spend": self.owned_week_spend,
                },
                "at_stake": self.at_stake,
                "unattributed_total": self.unattributed_total,
                "counts": self.counts(),
                # the contract: each gap in the one vocabulary (governance.ledger)
                "owned_share": self.owned_share,
                "gaps": [
                    {
                        "workload": r.workload,
                        "kinds": gap_kinds(r.gaps) if r.workload else [UNATTRIBUTED_SPEND],
                        "amount": r.amount,
                    }
                    for r in self.rows
                    if r.kind != RowKind.HYBRID  # a decision to take, not a gap
                ],
                "rows": [
                    {
                        **{k: getattr(r, k) for k in GapRow.__dataclass_fields__},
                        "claimable": r.claimable,
                    }
                    for r in self.rows
                ],
            }
        )


def build_gap_review(
    session: Session, as_of: date | datetime, context: CheckContext | None = None
) -> GapReview:
    ctx = context or build_context(session, as_of)
    window = ctx.thresholds.stake_window_days
    rows: list[GapRow] = []

    for row, workload in enumerate(ctx.workloads):
        gaps = gaps_of(workload)
        if not gaps:
            continue
        rows.append(_workload_row(ctx, row, workload, gaps[0].value, gaps))

    unattributed_rows, unattributed_total = _unattributed(ctx, window)
    rows.extend(unattributed_rows)
    rows.extend(_hybrids(ctx))

    order = {kind: i for i, kind in enumerate(RowKind.ORDER)}
    rows.sort(key=lambda r: (-r.amount, order[r.kind], r.workload or "", str(r.detail)))

    week = ctx.window_spend(HEADLINE_DAYS)
    owned = sum(
        (
            float(week[row])
            for row, w in enumerate(ctx.workloads)
            if w.owner is not None and w.owner.active
        ),
        0.0,
    )
    previous = _previous_headline(session, ctx.last_day)
    return GapReview(
        as_of=ctx.last_day,
        window_days=window,
        currency=ctx.currency,
        week_spend=money(float(week.sum()) + _unattributed_spend(ctx, HEADLINE_DAYS)),
        owned_week_spend=money(owned),
        previous_share=previous[0] if previous else None,
        previous_as_of=previous[1] if previous else None,
        rows=tuple(rows),
        unattributed_total=unattributed_total,
    )


def record_published(session: Session, review: GapReview, actor: str = "system") -> None:
    """Keep the published headline, so next week's review can show its trend."""
    audit.record(
        session,
        actor=actor,
        action=PUBLISHED_ACTION,
        entity="organisation",
        entity_key=review.as_of.isoformat(),
        after=jsonable(
            {
                "as_of": review.as_of,
                "owned_share": review.owned_share,
                "week_spend": review.week_spend,
                "rows": len(review.rows),
                "at_stake": review.at_stake,
            }
        ),
    )


def _workload_row(
    ctx: CheckContext, row: int, workload: Workload, kind: str, gaps: tuple[Gap, ...]
) -> GapRow:
    owner = workload.owner
    return GapRow(
        kind=kind,
        amount=money(ctx.stake[row]),
        currency=ctx.currency,
        workload=workload.slug,
        name=workload.name,
        team=workload.team.slug if workload.team else None,
        platform=workload.platform,
        owner=owner.slack_id if owner else None,
        owner_name=owner.label if owner else None,
        owner_active=bool(owner and owner.active),
        gaps=tuple(g.value for g in gaps),
        detail={"discovered_from": workload.discovered_from} if workload.discovered_from else {},
    )


def _unattributed(ctx: CheckContext, window: int) -> tuple[list[GapRow], Decimal]:
    """Rows per unattributed billed source series (largest first), and the window total."""
    start = ctx.last_day - timedelta(days=window - 1)
    series = ctx.session.execute(
        select(CostFact.source, CostFact.series_key, func.sum(CostFact.cost))
        .where(
            CostFact.workload_id.is_(None),
            billed_usage(),
            CostFact.day >= start,
            CostFact.day <= ctx.last_day,
        )
        .group_by(CostFact.source, CostFact.series_key)
        .order_by(func.sum(CostFact.cost).desc())
    ).all()
    total = money(sum((Decimal(amount or 0) for *_, amount in series), Decimal(0)))
    rows = [
        GapRow(
            kind=RowKind.UNATTRIBUTED,
            amount=money(amount or 0),
            currency=ctx.currency,
            detail={"source": source, "series_key": key, "label": describe_series_key(key)},
        )
        for source, key, amount in series[:MAX_UNATTRIBUTED_ROWS]
        if (amount or 0) > 0
    ]
    rest = series[MAX_UNATTRIBUTED_ROWS:]
    if rest:
        rows.append(
            GapRow(
                kind=RowKind.UNATTRIBUTED,
                amount=money(sum((Decimal(a or 0) for *_, a in rest), Decimal(0))),
                currency=ctx.currency,
                detail={
                    "series": len(rest),
                    "series_key": f"{len(rest)} smaller sources",
                    "label": f"{len(rest)} smaller sources",
                },
            )
        )
    return rows, total


def _unattributed_spend(ctx: CheckContext, days: int) -> float:
    """Spend no workload claims over the last `days` days (billed, else estimated), the
    same reading as every workload's spend."""
    unclaimed = ctx.facts.unattributed_daily.through(ctx.last_day)
    return float(unclaimed.cost[0, -days:].sum())


def _hybrids(ctx: CheckContext) -> list[GapRow]:
    """Hybrid workloads or features with no decision recorded for any of their workloads."""
    tokens = ctx.daily.tokens[:, -7:].sum(axis=1)
    gpu_hours = ctx.gpu.instance_hours.sum(axis=1)
    groups: dict[str, list[int]] = {}
    for row, workload in enumerate(ctx.workloads):
        if tokens[row] > 0 and gpu_hours[row] > 0:
            groups[f"workload:{workload.slug}"] = [row]
    by_feature: dict[str, list[int]] = defaultdict(list)
    for row, workload in enumerate(ctx.workloads):
        if workload.feature:
            by_feature[workload.feature].append(row)
    for feature, members in by_feature.items():
        families = {
            "self_hosted"
            if ctx.workloads[r].platform in SELF_HOSTED
            else "bedrock"
            if ctx.workloads[r].platform == Platform.BEDROCK.value
            else "other"
            for r in members
        }
        if {"self_hosted", "bedrock"} <= families:
            groups[f"feature:{feature}"] = members
    if not groups:
        return []
    ids = sorted({ctx.workloads[r].id for members in groups.values() for r in members})
    decided = set(
        ctx.session.scalars(
            select(DecisionRecord.workload_id).where(
                DecisionRecord.workload_id.in_(ids), DecisionRecord.decided_at < ctx.cutoff
            )
        )
    )
    rows = []
    for key, members in sorted(groups.items()):
        if any(ctx.workloads[r].id in decided for r in members):
            continue
        first = ctx.workloads[members[0]]
        owner = first.owner
        rows.append(
            GapRow(
                kind=RowKind.HYBRID,
                amount=money(sum(float(ctx.stake[r]) for r in members)),
                currency=ctx.currency,
                workload=first.slug,
                name=first.name,
                team=first.team.slug if first.team else None,
                platform=first.platform,
                owner=owner.slack_id if owner else None,
                owner_name=owner.label if owner else None,
                owner_active=bool(owner and owner.active),
                gaps=(RowKind.HYBRID,),
                detail={
                    "group": key,
                    "members": [ctx.workloads[r].slug for r in members],
                },
            )
        )
    return rows


def _previous_headline(session: Session, as_of: date) -> tuple[float, date] | None:
    """The owned share the latest review before `as_of` published, and its date."""
    events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == PUBLISHED_ACTION)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(200)
    )
    best: tuple[float, date] | None = None
    for event in events:
        after = event.after or {}
        try:
            published = date.fromisoformat(str(after.get("as_of")))
        except ValueError:
            continue
        share = after.get("owned_share")
        if share is None or published >= as_of:
            continue
        if best is None or published > best[1]:
            best = (float(share), published)
    return best


__all__ = [
    "PUBLISHED_ACTION",
    "ROW_LABELS",
    "GapReview",
    "GapRow",
    "RowKind",
    "build_gap_review",
    "record_published",
]

"""The weekly digest of each owner, as data: one `OwnerDigest` per owner, rendered later.

For each workload an owner is accountable for: last week against the week before (with the
largest driver of the change), the month-to-date spend and the month-end projection against
the budget, the date the budget runs out, the open findings, what idle GPUs cost last week,
a missing budget or exit strategy, and the decisions recorded for it.

"Last week" is the ISO week (Monday to Sunday) before the week of `as_of` (the day of the
cutoff): a digest sent on Monday 2026-11-09 covers 2026-11-02..08 against 2026-10-26..11-01;
`--as-of 2026-11-08` (the end of that Sunday) covers the same week.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from llmgov import economics
from llmgov.governance import alerts as alert_store
from llmgov.governance.checks import SELF_HOSTED, CheckContext, build_context, money
from llmgov.governance.findings import jsonable
from llmgov.governance.ledger import (
    ALERTED_STATUSES,
    NO_BUDGET,
    budget_status,
    data_warning,
    freshness,
)
from llmgov.governance.people import find_person
from llmgov.models.errors import BadInput
from llmgov.models.governance import DecisionRecord
from llmgov.models.registry import Workload

CHART_DAYS = 28
MAX_DECISIONS = 3


@dataclass(frozen=True)
class Driver:
    effect: str  # volume | retries | intensity | price_mix | unexplained
    amount: Decimal  # this effect's part of the change
    change: Decimal  # the whole change


@dataclass(frozen=True)
class OpenFinding:
    alert_id: int
    kind: str
    severity: str
    status: str  # open | acknowledged | snoozed
    message: str
    amount: Decimal


@dataclass(frozen=True)
class Decision:
    decided_at: datetime
    decided_by: str  # Slack user id
    recommendation: str
    note: str | None


@dataclass(frozen=True)
class WorkloadDigest:
    slug: str
    name: str | None
    platform: str
    team: str | None
    currency: str
    last_week: Decimal
    week_before: Decimal
    month_to_date: Decimal
    projected_month_end: Decimal
    projected_low: Decimal
    projected_high: Decimal
    budget: Decimal | None
    exhausted_on: date | None  # the day the month's budget ran or runs out
    driver: Driver | None  # the largest effect behind last week's change
    open_findings: tuple[OpenFinding, ...]
    idle_gpu_cost: Decimal | None  # what idle GPUs cost last week (fleets only)
    missing_budget: bool
    missing_exit_strategy: bool
    decisions: tuple[Decision, ...]
    budget_status: str = NO_BUDGET  # `governance.ledger.budget_status`
    stale: bool = False  # the spend data is older than its sources' delay (no change given)

    @property
    def change(self) -> Decimal:
        return self.last_week - self.week_before

    @property
    def change_pct(self) -> float | None:
        if self.week_before <= 0:
            return None
        return float(self.change / self.week_before * 100)

    @property
    def over_budget(self) -> bool:
        return self.budget_status in ALERTED_STATUSES


@dataclass(frozen=True)
class DigestChart:
    """The numbers behind the digest's one chart, summed over the owner's workloads."""

    days: tuple[date, ...]  # the last CHART_DAYS days
    daily: tuple[float, ...]
    estimated: tuple[bool, ...]  # the day is a token estimate (billing not in yet)
    month_days: tuple[date, ...]  # every day of the month of as_of
    month_actual: tuple[float | None, ...]  # cumulative through as_of, None after
    projection: tuple[float | None, ...]  # cumulative point projection after as_of
    projection_low: tuple[float | None, ...]
    projection_high: tuple[float | None, ...]
    budget: float | None  # the sum of the budgets, when every workload has one


@dataclass(frozen=True)
class OwnerDigest:
    owner: str  # Slack user id
    owner_name: str
    as_of: date  # the last day of data
    week: tuple[date, date]  # last week, Monday..Sunday
    previous_week: tuple[date, date]
    currency: str
    workloads: tuple[WorkloadDigest, ...]
    chart: DigestChart | None = None
    tz: str | None = None  # the owner's IANA time zone, from Slack
    data_through: date | None = None  # the newest day of spend data (governance.ledger)
    data_warning: str | None = None  # "Billing data through 26 Nov (12 days old)"

    @property
    def last_week(self) -> Decimal:
        return sum((w.last_week for w in self.workloads), Decimal(0))

    @property
    def week_before(self) -> Decimal:
        return sum((w.week_before for w in self.workloads), Decimal(0))

    @property
    def open_findings(self) -> int:
        return sum(len(w.open_findings) for w in self.workloads)

    def to_json(self) -> dict[str, Any]:
        return jsonable(
            {
                "owner": self.owner,
                "owner_name": self.owner_name,
                "as_of": self.as_of,
                # the contract: week_start/week_end, data_through, per workload the spend
                "week_start": self.week[0],
                "week_end": self.week[1],
                "data_through": self.data_through,
                "data_warning": self.data_warning,
                "week": {"start": self.week[0], "end": self.week[1]},
                "previous_week": {"start": self.previous_week[0], "end": self.previous_week[1]},
                "currency": self.currency,
                "last_week": self.last_week,
                "week_before": self.week_before,
                "workloads": [_workload_json(w) for w in self.workloads],
            }
        )


def _workload_json(w: WorkloadDigest) -> dict[str, Any]:
    data = {name: getattr(w, name) for name in WorkloadDigest.__dataclass_fields__}
    data["change"] = w.change
    data["change_pct"] = round(w.change_pct, 1) if w.change_pct is not None else None
    data["driver"] = vars(w.driver) if w.driver else None
    data["open_findings"] = [vars(f) for f in w.open_findings]
    data["decisions"] = [vars(d) for d in w.decisions]
    data["week_spend"] = w.last_week
    data["previous_week_spend"] = w.week_before
    return data


def weeks_before(day: date) -> tuple[tuple[date, date], tuple[date, date]]:
    """(last week, the week before) as Monday..Sunday ranges, for the week of `day`."""
    monday = day - timedelta(days=day.weekday())
    last = (monday - timedelta(days=7), monday - timedelta(days=1))
    before = (monday - timedelta(days=14), monday - timedelta(days=8))
    return last, before


def build_digests(
    session: Session,
    as_of: date | datetime,
    owner: str | None = None,
    context: CheckContext | None = None,
    *,
    owners: Sequence[str] | None = None,
) -> list[OwnerDigest]:
    """One digest per owner (the active owners of workloads that are not retired), or for
    `owner` / `owners` only (Slack ids, mentions or emails; BadInput for one who owns
    nothing). Only the named owners' workloads are loaded, so a per-owner call is cheap."""
    if owner is None and owners is not None and not owners:
        return []  # asked for nobody: not "everybody"
    named = [owner] if owner is not None else list(owners or [])
    wanted: set[str] | None = None
    person_ids: list[int] | None = None
    if named:
        wanted, person_ids = set(), []
        for ref in named:
            person = find_person(session, ref)
            if person is None or person.slack_id is None:
                raise BadInput(f"{ref} is not a known owner; owners come from the registry")
            wanted.add(person.slack_id)
            person_ids.append(person.id)
    ctx = context or build_context(session, as_of, owners=person_ids)

    rows_by_owner: dict[str, list[int]] = defaultdict(list)
    for row, workload in enumerate(ctx.workloads):
        person = workload.owner
        if person is None or not person.active or not person.slack_id:
            continue
        if wanted is None or person.slack_id in wanted:
            rows_by_owner[person.slack_id].append(row)
    if owner is not None and not rows_by_owner:
        raise BadInput(
            f"{owner} owns no active workloads, so there is no digest to send; "
            "see `/llm-owner list` for who owns what"
        )
    if not rows_by_owner:
        return []

    # the week before the one the digest is sent in (the cutoff's day)
    week, previous = weeks_before(ctx.last_day + timedelta(days=1))
    rows = sorted({row for owned in rows_by_owner.values() for row in owned})
    ids = [ctx.workloads[row].id for row in rows]
    last_week = ctx.period_spend(*week)
    week_before = ctx.period_spend(*previous)
    decomposition = ctx.decomposition(previous, week)
    fc = ctx.forecast
    findings = _open_findings(session, ids)
    decisions = _decisions(session, ids, ctx.cutoff)
    idle = _idle_cost(ctx, week)

    digests = []
    sources = freshness(ctx.session, ctx.last_day)
    spend_days = [f.data_through for f in sources if f.kind in ("billed", "usage")]
    data_through = max((d for d in spend_days if d is not None), default=None)
    warning = data_warning(sources)
    for slack_id, owned in sorted(rows_by_owner.items()):
        items = []
        for row in owned:
            workload = ctx.workloads[row]
            effect = economics.EFFECTS[int(decomposition.driver[row])]
            change = float(decomposition.change[row])
            driver = (
                Driver(effect, money(getattr(decomposition, effect)[row]), money(change))
                if abs(change) >= 0.005
                else None
            )
            exhausted = fc.exhaustion_date[row]
            items.append(
                WorkloadDigest(
                    slug=workload.slug,
                    name=workload.name,
                    platform=workload.platform,
                    team=workload.team.slug if workload.team else None,
                    currency=ctx.currency,
                    last_week=money(last_week[row]),
                    week_before=money(week_before[row]),
                    month_to_date=money(fc.month_to_date[row]),
                    projected_month_end=money(fc.month_end[row]),
                    projected_low=money(fc.month_end_low[row]),
                    projected_high=money(fc.month_end_high[row]),
                    budget=workload.budget_monthly,
                    exhausted_on=None if np.isnat(exhausted) else exhausted.astype(date),
                    driver=driver,
                    open_findings=tuple(findings.get(workload.id, ())),
                    idle_gpu_cost=idle.get(row),
                    missing_budget=workload.budget_monthly is None,
                    missing_exit_strategy=not (workload.exit_strategy or "").strip(),
                    decisions=tuple(decisions.get(workload.id, ())),
                    stale=warning is not None,
                    budget_status=budget_status(
                        workload.budget_monthly,
                        money(fc.month_to_date[row]),
                        money(fc.month_end[row]),
                        money(fc.month_end_high[row]),
                        ctx.limits(workload),
                        stale=warning is not None,
                    ),
                )
            )
        # Most money first: what changed most is what the owner should read first.
        items.sort(key=lambda w: (-w.last_week, w.slug))
        person = ctx.workloads[owned[0]].owner
        digests.append(
            OwnerDigest(
                owner=slack_id,
                owner_name=person.label if person else slack_id,
                as_of=ctx.last_day,
                week=week,
                previous_week=previous,
                currency=ctx.currency,
                workloads=tuple(items),
                chart=_chart(ctx, owned),
                tz=person.tz if person else None,
                data_through=data_through,
                data_warning=warning,
            )
        )
    return digests


def _chart(ctx: CheckContext, rows: list[int]) -> DigestChart:
    spend = ctx.spend[rows].sum(axis=0)
    billed = ctx.daily.has_billed[rows].any(axis=0)
    days = [d.astype(date) for d in ctx.daily.days[-CHART_DAYS:]]
    last = ctx.last_day
    first = last.replace(day=1)
    month_days = [first + timedelta(days=i) for i in range(_month_length(last))]
    fc = ctx.forecast
    month_so_far = spend[-last.day :] if last.day <= spend.size else spend
    cumulative = np.cumsum(month_so_far).tolist()
    remaining = len(month_days) - last.day
    path = fc.daily_path[rows].sum(axis=0)[:remaining]
    low = fc.daily_low[rows].sum(axis=0)[:remaining]
    high = fc.daily_high[rows].sum(axis=0)[:remaining]
    mtd = cumulative[-1] if cumulative else 0.0
    actual: list[float | None] = [*cumulative, *([None] * remaining)]
    pad: list[float | None] = [None] * last.day
    budgets = [ctx.workloads[r].budget_monthly for r in rows]
    return DigestChart(
        days=tuple(days),
        daily=tuple(float(v) for v in spend[-CHART_DAYS:]),
        estimated=tuple(
            bool(not b and v > 0)
            for b, v in zip(billed[-CHART_DAYS:], spend[-CHART_DAYS:], strict=True)
        ),
        month_days=tuple(month_days),
        month_actual=tuple(actual[: len(month_days)]),
        projection=tuple(pad + (mtd + np.cumsum(path)).tolist()),
        projection_low=tuple(pad + (mtd + np.cumsum(low)).tolist()),
        projection_high=tuple(pad + (mtd + np.cumsum(high)).tolist()),
        budget=float(sum(budgets)) if budgets and all(b is not None for b in budgets) else None,
    )


def _month_length(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def _open_findings(session: Session, workload_ids: list[int]) -> dict[int, list[OpenFinding]]:
    found: dict[int, list[OpenFinding]] = defaultdict(list)
    for alert in alert_store.unresolved_for_workloads(session, workload_ids):
        found[alert.workload_id].append(
            OpenFinding(
                alert.id,
                alert.kind,
                alert.severity,
                alert.status,
                alert.message,
                Decimal(alert.amount or 0),
            )
        )
    return found


def _decisions(
    session: Session, workload_ids: list[int], cutoff: datetime
) -> dict[int, list[Decision]]:
    found: dict[int, list[Decision]] = defaultdict(list)
    for start in range(0, len(workload_ids), 500):
        chunk = workload_ids[start : start + 500]
        records = session.scalars(
            select(DecisionRecord)
            .where(DecisionRecord.workload_id.in_(chunk), DecisionRecord.decided_at < cutoff)
            .order_by(DecisionRecord.decided_at.desc(), DecisionRecord.id.desc())
        )
        for record in records:
            if len(found[record.workload_id]) < MAX_DECISIONS:
                found[record.workload_id].append(
                    Decision(
                        record.decided_at, record.decided_by, record.recommendation, record.note
                    )
                )
    return found


def _idle_cost(ctx: CheckContext, week: tuple[date, date]) -> dict[int, Decimal]:
    """Row → what idle GPU hours cost last week, for self-hosted fleets."""
    fleets = [row for row, w in enumerate(ctx.workloads) if _is_fleet(w)]
    if not fleets:
        return {}
    gpu = ctx.gpu
    days = gpu.hours.astype("datetime64[D]")
    inside = np.flatnonzero(
        (days >= np.datetime64(week[0], "D")) & (days <= np.datetime64(week[1], "D"))
    )
    if inside.size == 0:
        return {}
    result = economics.idle_gpu(
        gpu.select(slice(None), slice(int(inside[0]), int(inside[-1]) + 1)),
        util_pct=ctx.per_workload("idle_gpu_util_pct"),
        min_hours=0.0,
        min_amount=0.0,
        window_hours=int(inside.size),
    )
    idle = dict(zip(result.workloads.tolist(), result.evidence.get("idle_cost", []), strict=True))
    return {row: money(idle.get(row, 0.0)) for row in fleets}


def _is_fleet(workload: Workload) -> bool:
    return workload.platform in SELF_HOSTED or bool(workload.gpu)


__all__ = [
    "CHART_DAYS",
    "Decision",
    "DigestChart",
    "Driver",
    "OpenFinding",
    "OwnerDigest",
    "WorkloadDigest",
    "build_digests",
    "weeks_before",
]

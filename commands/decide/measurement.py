"""What the facts say about a registered workload: volume, input/output and cache mix,
traffic shape, latency, model, region, billed cost and how long it has had data.

The measured monthly Bedrock cost is read by `measured_monthly_cost` over the cost facts
attributed to the workload. It reads the facts directly (it imports nothing from
`commands/cost.py`); when the one-truth ledger module lands, this one function is where the
decision should switch to reading the ledger.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from llmgov.commands.decide.parse import (
    DAYS_PER_MONTH,
    HOURLY_DAYS,
    WHAT_IF_EXAMPLE,
    WINDOW_DAYS,
)
from llmgov.commands.parsing import ParseError
from llmgov.economics.unit import traffic_shape
from llmgov.models.facts import CostFact, GpuFact, UsageFact
from llmgov.models.registry import OrganisationProfile, Workload


def start_of_day(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def end_of_day(day: date) -> datetime:
    """The first instant after `day` (UTC)."""
    return start_of_day(day + timedelta(days=1))


def as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


class _Facts:
    """The fact filters of one workload's measurement (the as-of cut-off included)."""

    def __init__(self, session: Session, workload_id: int, known_at: datetime | None):
        self.session = session
        self.workload_id = workload_id
        self.known_at = known_at
        self.dialect = session.get_bind().dialect.name

    def usage_where(self, start: date, end: date) -> list:
        conditions = [
            UsageFact.hour >= start_of_day(start),
            UsageFact.hour < end_of_day(end),
            UsageFact.workload_id == self.workload_id,
        ]
        if self.known_at is not None:
            conditions.append(UsageFact.collected_at < self.known_at)
        return conditions

    def cost_where(self, start: date, end: date) -> list:
        conditions = [
            CostFact.day >= start,
            CostFact.day <= end,
            CostFact.workload_id == self.workload_id,
        ]
        if self.known_at is not None:
            conditions.append(CostFact.collected_at < self.known_at)
        return conditions

    def usage_day(self):
        if self.dialect == "postgresql":
            return func.date(func.timezone("UTC", UsageFact.hour))
        return func.date(UsageFact.hour)

    def billed_through(self, as_of: date) -> date | None:
        """The last day with billed cost (any workload): billing is at least this fresh."""
        statement = select(func.max(CostFact.day)).where(CostFact.day <= as_of)
        if self.known_at is not None:
            statement = statement.where(CostFact.collected_at < self.known_at)
        value = self.session.scalar(statement)
        return as_date(value) if value is not None else None


def measured_monthly_cost(
    session: Session, workload_id: int, as_of: date, known_at: datetime | None = None
) -> tuple[float | None, float | None, int]:
    """The workload's billed cost over the window, as a month (x 30.42 / days billed), its
    cost per million tokens when usage covers the billed days, and the days billed.

    The one place the decision reads measured spend (switch it to the ledger module)."""
    facts = _Facts(session, workload_id, known_at)
    start = as_of - timedelta(days=WINDOW_DAYS - 1)
    billed_through = facts.billed_through(as_of)
    if billed_through is None or billed_through < start:
        return None, None, 0
    billed = session.scalar(
        select(func.sum(CostFact.cost)).where(*facts.cost_where(start, billed_through))
    )
    if not billed:
        return None, None, 0
    days = (billed_through - start).days + 1
    tokens = session.scalar(
        select(
            func.sum(
                UsageFact.input_tokens
                + UsageFact.output_tokens
                + UsageFact.cache_read_tokens
                + UsageFact.cache_write_tokens
            )
        ).where(*facts.usage_where(start, billed_through))
    )
    first_usage = session.scalar(
        select(func.min(UsageFact.hour)).where(*facts.usage_where(start, billed_through))
    )
    covered = first_usage is not None and as_date(first_usage) <= start
    per_mtok = float(billed) / float(tokens) * 1e6 if tokens and covered else None
    return float(billed) / days * DAYS_PER_MONTH, per_mtok, days


@dataclass
class Measured:
    """What the facts say about a registered workload over the window."""

    monthly_tokens: float | None = None
    input_share: float | None = None
    peak_to_mean: float | None = None
    daily_variation: float | None = None
    hourly_tokens: np.ndarray | None = None
    latency_p95_ms: float | None = None
    model: str | None = None
    tokens_per_request: tuple[float, float] | None = None  # (input, output) per call
    cache_read_share: float = 0.0  # of all tokens
    cache_write_share: float = 0.0
    region: str | None = None
    history_days: int | None = None  # days since the first fact of any kind
    monthly_cost: float | None = None
    blended_price: float | None = None  # billed cost per million tokens
    instance_type: str | None = None
    days: int = 0


def load_workload(session: Session, slug: str) -> Workload:
    workload = session.scalar(select(Workload).where(Workload.slug == slug))
    if workload is None:
        known = session.scalars(select(Workload.slug)).all()
        close = difflib.get_close_matches(slug, list(known), n=1, cutoff=0.6)
        hint = f" Did you mean `{close[0]}`?" if close else ""
        raise ParseError(
            f"There is no workload `{slug}`.{hint} For a hypothetical one, give key=values.",
            WHAT_IF_EXAMPLE,
        )
    return workload


def measure(
    session: Session, workload: Workload, as_of: date, known_at: datetime | None
) -> Measured:
    """Volume, mix, traffic shape, latency, model and billed cost over the last 30 days."""
    facts = _Facts(session, workload.id, known_at)
    start = as_of - timedelta(days=WINDOW_DAYS - 1)
    where = facts.usage_where(start, as_of)
    measured = Measured()

    day = facts.usage_day()
    daily = session.execute(
        select(
            day,
            func.sum(UsageFact.input_tokens),
            func.sum(UsageFact.output_tokens),
            func.sum(UsageFact.invocations),
            func.sum(UsageFact.cache_read_tokens),
            func.sum(UsageFact.cache_write_tokens),
        )
        .where(*where)
        .group_by(day)
        .order_by(day)
    ).all()
    hourly_start = as_of - timedelta(days=HOURLY_DAYS - 1)
    hourly_rows = session.execute(
        select(
            UsageFact.hour,
            func.sum(
                UsageFact.input_tokens
                + UsageFact.output_tokens
                + UsageFact.cache_read_tokens
                + UsageFact.cache_write_tokens
            ),
        )
        .where(*facts.usage_where(hourly_start, as_of))
        .group_by(UsageFact.hour)
        .order_by(UsageFact.hour)
    ).all()
    from_gpus = not daily
    if from_gpus:  # a self-hosted fleet: tokens served from the GPU metrics
        daily, hourly_rows = _gpu_tokens(session, workload.id, start, hourly_start, as_of, known_at)

    if daily:
        by_day = {as_date(row[0]): row for row in daily}
        first = min(by_day)
        days = [first + timedelta(days=i) for i in range((as_of - first).days + 1)]
        cache_read = sum(float(row[4] or 0) for row in daily)
        cache_write = sum(float(row[5] or 0) for row in daily)
        # cache tokens are input the model reads: they count in the volume and the mix
        inputs = np.array(
            [
                float(by_day[d][1] or 0) + float(by_day[d][4] or 0) + float(by_day[d][5] or 0)
                if d in by_day
                else 0.0
                for d in days
            ]
        )
        outputs = np.array([float(by_day[d][2] or 0) if d in by_day else 0.0 for d in days])
        calls = float(sum(float(row[3] or 0) for row in daily))
        hourly = _hourly_series(hourly_rows)
        shape = traffic_shape(hourly[None, :], (inputs + outputs)[None, :])
        total = float(inputs.sum() + outputs.sum())
        measured.monthly_tokens = float(shape.monthly_tokens[0])
        # tokens served by a fleet do not say how many were input: leave the mix to defaults
        measured.input_share = float(inputs.sum() / total) if total and not from_gpus else None
        measured.peak_to_mean = float(shape.peak_to_mean[0]) if hourly.size else None
        measured.daily_variation = float(shape.daily_cv[0]) if len(days) > 1 else None
        measured.hourly_tokens = hourly if hourly.size else None
        measured.days = len(days)
        if total and not from_gpus:
            measured.cache_read_share = cache_read / total
            measured.cache_write_share = cache_write / total
        if calls and not from_gpus:
            measured.tokens_per_request = (
                float(inputs.sum()) / calls,
                float(outputs.sum()) / calls,
            )

    latency = session.execute(
        select(
            func.sum(UsageFact.latency_ms_p95 * UsageFact.invocations),
            func.sum(UsageFact.invocations),
        ).where(*where, UsageFact.latency_ms_p95.is_not(None))
    ).first()
    if latency and latency[1]:
        measured.latency_p95_ms = float(latency[0]) / float(latency[1])
    model = session.execute(
        select(UsageFact.model_id)
        .where(*where, UsageFact.model_id.is_not(None))
        .group_by(UsageFact.model_id)
        .order_by(func.sum(UsageFact.input_tokens + UsageFact.output_tokens).desc())
        .limit(1)
    ).scalar()
    measured.model = model

    cost, per_mtok, _days = measured_monthly_cost(session, workload.id, as_of, known_at)
    measured.monthly_cost = cost
    measured.blended_price = per_mtok
    measured.region = session.execute(
        select(UsageFact.region)
        .where(*where, UsageFact.region.is_not(None))
        .group_by(UsageFact.region)
        .order_by(func.count().desc())
        .limit(1)
    ).scalar()
    measured.history_days = _history_days(session, workload.id, as_of, known_at)
    instance = session.execute(
        select(GpuFact.instance_type)
        .where(GpuFact.workload_id == workload.id, GpuFact.instance_type.is_not(None))
        .group_by(GpuFact.instance_type)
        .order_by(func.count().desc())
        .limit(1)
    ).scalar()
    measured.instance_type = instance
    return measured


def _history_days(
    session: Session, workload_id: int, as_of: date, known_at: datetime | None
) -> int | None:
    """Days from the workload's first fact (usage, GPU or cost) to the as-of date."""
    firsts = []
    for column, owner, collected in (
        (UsageFact.hour, UsageFact.workload_id, UsageFact.collected_at),
        (GpuFact.hour, GpuFact.workload_id, GpuFact.collected_at),
        (CostFact.day, CostFact.workload_id, CostFact.collected_at),
    ):
        statement = select(func.min(column)).where(owner == workload_id)
        if known_at is not None:
            statement = statement.where(collected < known_at)
        value = session.scalar(statement)
        if value is not None:
            firsts.append(as_date(value))
    if not firsts:
        return None
    return max((as_of - min(firsts)).days + 1, 0)


def _gpu_tokens(session, workload_id, start, hourly_start, as_of, known_at):
    """Daily and hourly tokens served by a self-hosted fleet (vLLM counters)."""
    conditions = [
        GpuFact.workload_id == workload_id,
        GpuFact.hour >= start_of_day(start),
        GpuFact.hour < end_of_day(as_of),
        GpuFact.tokens_served.is_not(None),
    ]
    if known_at is not None:
        conditions.append(GpuFact.collected_at < known_at)
    rows = session.execute(
        select(GpuFact.hour, func.sum(GpuFact.tokens_served))
        .where(*conditions)
        .group_by(GpuFact.hour)
        .order_by(GpuFact.hour)
    ).all()
    by_day: dict[date, float] = {}
    for hour, tokens in rows:
        key = as_date(hour)
        by_day[key] = by_day.get(key, 0.0) + float(tokens or 0)
    # input/output split unknown for a fleet: all tokens count as served, calls unknown
    daily = [(day, 0.0, tokens, 0.0, 0.0, 0.0) for day, tokens in sorted(by_day.items())]
    hourly = [(h, t) for h, t in rows if as_date(h) >= hourly_start]
    return daily, hourly


def _hourly_series(rows) -> np.ndarray:
    """Hourly token counts on a consecutive axis (missing hours are zero traffic)."""
    if not rows:
        return np.zeros(0)
    hours = [_as_datetime(row[0]) for row in rows]
    first = min(hours)
    count = int((max(hours) - first).total_seconds() // 3600) + 1
    series = np.zeros(count)
    for hour, (_, tokens) in zip(hours, rows, strict=True):
        series[int((hour - first).total_seconds() // 3600)] += float(tokens or 0)
    return series


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def organisation(session: Session) -> OrganisationProfile:
    return session.get(OrganisationProfile, 1) or OrganisationProfile(
        currency="USD", ml_infrastructure=False, people_cost_per_year=Decimal(180000)
    )

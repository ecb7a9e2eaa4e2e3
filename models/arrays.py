"""The queries that turn facts into the dense `[workloads x time]` arrays of the numpy core.

One grouped query per fact table and grain (GROUP BY workload, day or hour), whose rows are
fetched as plain numbers (the bucket is an integer offset computed in SQL) and scattered
into numpy arrays with index arrays: no Python object per fact. Works on SQLite and
PostgreSQL. Only facts known as of `as_of` are read: days up to and including `as_of`,
hours before the end of that day.

Facts attributed to no workload (`workload_id` NULL) are summed into a separate
`unattributed` series, never dropped. Money is float here (the core's unit); the registry
keeps Decimal.

This module imports `economics` for its input containers: the core is a leaf that imports
nothing of ours, so the arrow stays one way.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
from sqlalchemy import (
    BigInteger,
    Float,
    Integer,
    and_,
    case,
    cast,
    extract,
    func,
    literal_column,
    select,
)
from sqlalchemy.orm import Session

from economics.series import DailyArrays, GpuArrays, HourlyArrays
from models.facts import CostFact, GpuFact, Price, UpstreamFact, UsageFact
from models.registry import Workload

UNATTRIBUTED = -1  # workload id standing for "no workload" in grouped rows


@dataclass(frozen=True, eq=False)
class FactArrays:
    """Everything the core needs about W workloads as of one day.

    - `as_of`: the day; `workload_ids` `(W,)` int64 (ascending) and `slugs` (W strings): the
      row order of every array.
    - `daily`: `DailyArrays`, workloads x the `history_days` days ending at `as_of`.
    - `hourly`: `HourlyArrays`, workloads x the hours of the last `hourly_days` days, ending
      at the latest hour any usage or GPU fact was collected for (at most the end of
      `as_of`).
    - `gpu`: `GpuArrays` on the same hours.
    - `budgets`: `(W,)` monthly budget, NaN where none; `currencies`: W currency codes.
    - `unattributed_daily`, `unattributed_hourly`: one-row arrays of the facts no workload
      claimed (`workload_ids` = [-1]).
    """

    as_of: date
    workload_ids: np.ndarray
    slugs: tuple[str, ...]
    daily: DailyArrays
    hourly: HourlyArrays
    gpu: GpuArrays
    budgets: np.ndarray
    currencies: tuple[str, ...]
    unattributed_daily: DailyArrays
    unattributed_hourly: HourlyArrays

    def row_of(self, workload_id: int) -> int:
        """The row of a workload id (ValueError when it is not in these arrays)."""
        row = int(np.searchsorted(self.workload_ids, workload_id))
        if row >= self.workload_ids.size or self.workload_ids[row] != workload_id:
            raise ValueError(f"workload {workload_id} is not in these arrays")
        return row


def build_arrays(
    session: Session,
    as_of: date,
    *,
    workload_ids: Sequence[int] | None = None,
    history_days: int = 400,
    hourly_days: int = 14,
) -> FactArrays:
    """Query the facts known as of `as_of` into dense arrays (see `FactArrays`).

    `workload_ids`: restrict to these workloads (default: every registered workload).
    """
    dialect = session.get_bind().dialect.name
    registry = _workloads(session, workload_ids)
    ids = np.array([row[0] for row in registry], dtype=np.int64)
    n = ids.size

    first_day = as_of - timedelta(days=history_days - 1)
    day_start = datetime.combine(first_day, time(), tzinfo=UTC)
    day_end = datetime.combine(as_of + timedelta(days=1), time(), tzinfo=UTC)
    hour_end = _last_collected_hour_end(session, day_end)
    hour_start = hour_end - timedelta(days=hourly_days)
    n_hours = int((hour_end - hour_start) / timedelta(hours=1))
    scope = _Scope(ids, dialect, workload_ids is not None)

    # -- daily -------------------------------------------------------------------------
    billed = scope.grid(
        session,
        CostFact,
        CostFact.day,
        day_start,
        86400,
        history_days,
        [func.sum(CostFact.cost), func.count()],
        and_(CostFact.is_llm.is_(True), CostFact.day >= first_day, CostFact.day <= as_of),
    )
    usage_daily = scope.grid(
        session,
        UsageFact,
        UsageFact.hour,
        day_start,
        86400,
        history_days,
        _usage_measures(),
        and_(UsageFact.hour >= day_start, UsageFact.hour < day_end),
    )
    upstream_daily = scope.grid(
        session,
        UpstreamFact,
        UpstreamFact.hour,
        day_start,
        86400,
        history_days,
        [func.sum(UpstreamFact.requests)],
        and_(UpstreamFact.hour >= day_start, UpstreamFact.hour < day_end),
    )
    default_gpu_price = _default_gpu_prices(session, registry)
    gpu_price = _gpu_price_expression(session)
    gpu_daily = scope.grid(
        session,
        GpuFact,
        GpuFact.hour,
        day_start,
        86400,
        history_days,
        _gpu_cost_measures(gpu_price),
        and_(GpuFact.hour >= day_start, GpuFact.hour < day_end),
    )

    def daily_arrays(rows: slice, labels: np.ndarray) -> DailyArrays:
        billed_cost, billed_rows = billed[0][rows], billed[1][rows]
        calls, tokens_in, tokens_out, errors, throttles, estimated = (m[rows] for m in usage_daily)
        priced, unpriced = gpu_daily[0][rows], gpu_daily[1][rows]
        has_billed = billed_rows > 0
        return DailyArrays(
            days=np.datetime64(first_day) + np.arange(history_days),
            cost=np.where(has_billed, billed_cost, estimated),
            billed_cost=billed_cost,
            estimated_cost=estimated,
            has_billed=has_billed,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            requests=calls,
            errors=errors,
            throttles=throttles,
            upstream_requests=upstream_daily[0][rows],
            gpu_cost=priced + unpriced * _column(default_gpu_price, rows),
            workload_ids=labels,
        )

    # -- hourly ------------------------------------------------------------------------
    usage_hourly = scope.grid(
        session,
        UsageFact,
        UsageFact.hour,
        hour_start,
        3600,
        n_hours,
        _usage_measures(),
        and_(UsageFact.hour >= hour_start, UsageFact.hour < hour_end),
    )
    upstream_hourly = scope.grid(
        session,
        UpstreamFact,
        UpstreamFact.hour,
        hour_start,
        3600,
        n_hours,
        [func.sum(UpstreamFact.requests)],
        and_(UpstreamFact.hour >= hour_start, UpstreamFact.hour < hour_end),
    )
    gpu_hourly = scope.grid(
        session,
        GpuFact,
        GpuFact.hour,
        hour_start,
        3600,
        n_hours,
        [
            func.count(),
            func.sum(GpuFact.gpu_count),
            func.sum(GpuFact.utilisation_pct * GpuFact.gpu_count),
            func.sum(case((GpuFact.utilisation_pct.is_(None), 0), else_=GpuFact.gpu_count)),
            func.sum(func.coalesce(GpuFact.tokens_served, 0.0)),
            *_gpu_cost_measures(gpu_price),
        ],
        and_(GpuFact.hour >= hour_start, GpuFact.hour < hour_end),
    )
    hours = np.datetime64(hour_start.replace(tzinfo=None), "h") + np.arange(n_hours)

    def hourly_arrays(rows: slice, labels: np.ndarray) -> HourlyArrays:
        calls, tokens_in, tokens_out, errors, throttles, estimated = (m[rows] for m in usage_hourly)
        return HourlyArrays(
            hours=hours,
            cost=estimated,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            requests=calls,
            errors=errors,
            throttles=throttles,
            upstream_requests=upstream_hourly[0][rows],
            workload_ids=labels,
        )

    instances, gpus, weighted_util, measured_gpus, served, priced, unpriced = (
        m[:n] for m in gpu_hourly
    )
    gpu = GpuArrays(
        hours=hours,
        instance_hours=instances,
        gpu_hours=gpus,
        utilisation_pct=np.divide(
            weighted_util, measured_gpus, out=np.zeros_like(weighted_util), where=measured_gpus > 0
        ),
        measured=measured_gpus > 0,
        cost=priced + unpriced * _column(default_gpu_price, slice(0, n)),
        tokens_served=served,
        workload_ids=ids,
    )

    workloads, nobody = slice(0, n), slice(n, n + 1)
    return FactArrays(
        as_of=as_of,
        workload_ids=ids,
        slugs=tuple(row[1] for row in registry),
        daily=daily_arrays(workloads, ids),
        hourly=hourly_arrays(workloads, ids),
        gpu=gpu,
        budgets=np.array([np.nan if row[2] is None else float(row[2]) for row in registry]),
        currencies=tuple(row[3] for row in registry),
        unattributed_daily=daily_arrays(nobody, np.array([UNATTRIBUTED])),
        unattributed_hourly=hourly_arrays(nobody, np.array([UNATTRIBUTED])),
    )


class _Scope:
    """The rows of the arrays: the workloads (in id order) plus one unattributed row."""

    def __init__(self, ids: np.ndarray, dialect: str, filtered: bool) -> None:
        self.ids = ids
        self.dialect = dialect
        self.filtered = filtered

    def grid(
        self,
        session,
        table,
        time_column,
        start: datetime,
        bucket_seconds: int,
        buckets: int,
        measures: list[Any],
        where,
    ) -> list[np.ndarray]:
        """One grouped query: `measures` summed per (workload, bucket), scattered into
        `(W + 1, buckets)` arrays, the last row for unattributed facts."""
        # Constants inlined (not bound): PostgreSQL only accepts a GROUP BY expression that
        # is textually the selected one, and each bind would get a parameter of its own.
        offset = _epoch_seconds(time_column, self.dialect) - literal_column(
            str(int(start.timestamp()))
        )
        # integer division on both backends; offsets are never negative (see `where`)
        bucket = cast(offset.self_group().op("/")(literal_column(str(bucket_seconds))), Integer)
        workload = func.coalesce(table.workload_id, literal_column(str(UNATTRIBUTED)))
        condition = where
        if self.filtered:
            condition = and_(
                where, (table.workload_id.in_(self.ids.tolist())) | table.workload_id.is_(None)
            )
        statement = (
            select(workload, bucket, *(cast(m, Float) for m in measures))
            .where(condition)
            .group_by(workload, bucket)
        )
        rows = session.execute(statement).all()
        width = 2 + len(measures)
        flat = np.fromiter(
            (0.0 if v is None else v for v in itertools.chain.from_iterable(rows)),
            dtype=np.float64,
            count=len(rows) * width,
        ).reshape(len(rows), width)
        out = [np.zeros((self.ids.size + 1, buckets)) for _ in measures]
        if not len(rows):
            return out
        owners = flat[:, 0].astype(np.int64)
        position = np.searchsorted(self.ids, owners)
        known = (
            (position < self.ids.size)
            & (self.ids[np.minimum(position, self.ids.size - 1)] == owners)
            if self.ids.size
            else np.zeros(len(rows), dtype=bool)
        )
        row = np.where(owners == UNATTRIBUTED, self.ids.size, np.where(known, position, -1))
        column = flat[:, 1].astype(np.int64)
        keep = (row >= 0) & (column >= 0) & (column < buckets)
        for k, array in enumerate(out):  # (row, column) pairs are unique after GROUP BY
            array[row[keep], column[keep]] = flat[keep, 2 + k]
        return out


def _epoch_seconds(column, dialect: str):
    """Seconds since 1970-01-01 UTC of a date or UTC timestamp column, in SQL."""
    if dialect == "sqlite":
        return cast(func.strftime(literal_column("'%s'"), column), BigInteger)
    return cast(func.floor(extract("epoch", column)), BigInteger)


def _usage_measures() -> list[Any]:
    """invocations, input tokens (incl. cache reads and writes), output tokens, errors,
    throttles, token-based cost estimate."""
    return [
        func.sum(UsageFact.invocations),
        func.sum(
            UsageFact.input_tokens + UsageFact.cache_read_tokens + UsageFact.cache_write_tokens
        ),
        func.sum(UsageFact.output_tokens),
        func.sum(UsageFact.client_errors + UsageFact.server_errors),
        func.sum(UsageFact.throttles),
        func.sum(func.coalesce(UsageFact.estimated_cost, 0)),
    ]


def _gpu_cost_measures(price) -> list[Any]:
    """Priced instance-hours' cost, and the instance-hours whose type has no price (priced
    later at the workload's declared instance type)."""
    return [func.sum(func.coalesce(price, 0.0)), func.sum(case((price.is_(None), 1), else_=0))]


def _gpu_prices(session: Session) -> dict[str, float]:
    """Hourly price per instance type: the region-independent ('*') one, else the mean."""
    rows = session.execute(
        select(Price.key, Price.region, Price.amount).where(Price.kind == "gpu_hour")
    ).all()
    by_key: dict[str, list[tuple[str, float]]] = {}
    for key, region, amount in rows:
        by_key.setdefault(key, []).append((region, float(amount)))
    prices = {}
    for key, entries in by_key.items():
        anywhere = [amount for region, amount in entries if region == "*"]
        prices[key] = anywhere[0] if anywhere else sum(a for _, a in entries) / len(entries)
    return prices


def _gpu_price_expression(session: Session):
    """A SQL CASE mapping `GpuFact.instance_type` to its hourly price (NULL: unknown)."""
    prices = _gpu_prices(session)
    if not prices:
        return cast(None, Float)
    return case(
        *((GpuFact.instance_type == key, amount) for key, amount in sorted(prices.items())),
        else_=None,
    )


def _default_gpu_prices(session: Session, registry) -> np.ndarray:
    """`(W + 1,)` hourly price of each workload's declared `gpu.instance_type` (0: none)."""
    prices = _gpu_prices(session)
    declared = [
        (row[4] or {}).get("instance_type") if isinstance(row[4], dict) else None
        for row in registry
    ]
    return np.array([prices.get(kind, 0.0) if kind else 0.0 for kind in declared] + [0.0])


def _column(values: np.ndarray, rows: slice) -> np.ndarray:
    return values[rows][:, None]


def _workloads(session: Session, workload_ids: Sequence[int] | None) -> list[tuple]:
    statement = select(
        Workload.id, Workload.slug, Workload.budget_monthly, Workload.currency, Workload.gpu
    ).order_by(Workload.id)
    if workload_ids is not None:
        statement = statement.where(Workload.id.in_(list(workload_ids)))
    return [tuple(row) for row in session.execute(statement).all()]


def _last_collected_hour_end(session: Session, day_end: datetime) -> datetime:
    """The end of the latest hour with a usage or GPU fact before `day_end` (the hourly
    axis stops there, so hours not collected yet do not read as zero), or `day_end`."""
    latest = [
        session.execute(select(func.max(table.hour)).where(table.hour < day_end)).scalar()
        for table in (UsageFact, GpuFact)
    ]
    latest = [moment for moment in latest if moment is not None]
    if not latest:
        return day_end
    newest = max(moment if moment.tzinfo else moment.replace(tzinfo=UTC) for moment in latest)
    return newest.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


__all__ = ["UNATTRIBUTED", "FactArrays", "build_arrays"]

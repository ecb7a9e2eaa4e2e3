"""The queries that turn facts into the dense `[workloads x time]` arrays of the numpy core.

One grouped query per fact table and grain (GROUP BY workload, day or hour); the bucket is
an integer offset computed in SQL, every measure a float, so the rows are fetched as plain
numbers and scattered into numpy arrays with index arrays: no Python object per fact.
Works on SQLite and PostgreSQL. Only facts known as of `as_of` are read: days up to and
including `as_of`, hours before the end of that day.

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

from llmgov.economics.series import DailyArrays, GpuArrays, HourlyArrays
from llmgov.models.facts import CostFact, GpuFact, Price, UpstreamFact, UsageFact
from llmgov.models.ledger import ledger_billed
from llmgov.models.registry import Workload

UNATTRIBUTED = -1  # workload id standing for "no workload" in grouped rows
DAY_SECONDS, HOUR_SECONDS = 86400, 3600


@dataclass(frozen=True, eq=False)
class FactArrays:
    """Everything the core needs about W workloads as of one day.

    - `as_of`: the day; `workload_ids` `(W,)` int64 (ascending) and `slugs` (W strings): the
      row order of every array.
    - `daily`: `DailyArrays`, workloads x the `history_days` days ending at `as_of`. `cost`
      is the billed spend (`models.ledger.ledger_billed`: usage, one source per account and
      day, no credits or tax) where a day has billing, else the token-based estimate of the usage facts; input tokens include cache reads and writes;
      errors are client + server errors; `gpu_cost` is the fleets' reservation cost.
    - `hourly`: `HourlyArrays`, workloads x the hours of the last `hourly_days` days, ending
      at the latest hour any usage or GPU fact was collected for (at most the end of
      `as_of`), so hours not collected yet do not read as zero spend.
    - `gpu`: `GpuArrays` on the same hours. An instance-hour is priced at its instance
      type's `gpu_hour` price (region '*' first, else the mean over regions), or at the
      workload's declared `gpu.instance_type` when the fact has no known type.
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


@dataclass(frozen=True)
class _Axis:
    """A time axis: `buckets` buckets of `seconds` from `start` (UTC)."""

    start: datetime
    seconds: int
    buckets: int

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.seconds * self.buckets)


def build_arrays(
    session: Session,
    as_of: date,
    *,
    workload_ids: Sequence[int] | None = None,
    history_days: int = 400,
    hourly_days: int = 14,
) -> FactArrays:
    """Query the facts known as of `as_of` into dense arrays (see `FactArrays`).

    `workload_ids`: restrict to these workloads (default: every registered workload); the
    unattributed series is built either way.
    """
    registry = _workloads(session, workload_ids)
    ids = np.array([row[0] for row in registry], dtype=np.int64)
    grids = _Grids(session, ids, filtered=workload_ids is not None)
    n = ids.size

    first_day = as_of - timedelta(days=history_days - 1)
    days = _Axis(datetime.combine(first_day, time(), tzinfo=UTC), DAY_SECONDS, history_days)
    hour_end = _last_collected_hour_end(session, days.end)
    hours = _Axis(hour_end - timedelta(days=hourly_days), HOUR_SECONDS, hourly_days * 24)

    prices = _gpu_prices(session)
    gpu_price = _price_of_instance_type(prices)  # SQL, per fact
    declared: list[str | None] = [
        (row[4] or {}).get("instance_type") if isinstance(row[4], dict) else None
        for row in registry
    ]
    # (W + 1, 1): the hourly price of each workload's declared instance type (0: none)
    declared_prices = [prices.get(kind, 0.0) if kind else 0.0 for kind in declared] + [0.0]
    declared_price = np.array(declared_prices, dtype=float)[:, None]

    billed, billed_facts = grids.query(
        CostFact,
        CostFact.day,
        days,
        [func.sum(CostFact.cost), func.count()],
        and_(ledger_billed(), CostFact.day >= first_day, CostFact.day <= as_of),
    )
    usage_daily = grids.query(UsageFact, UsageFact.hour, days, _usage_measures())
    upstream_daily = grids.query(
        UpstreamFact, UpstreamFact.hour, days, [func.sum(UpstreamFact.requests)]
    )[0]
    priced, unpriced = grids.query(GpuFact, GpuFact.hour, days, _gpu_cost_measures(gpu_price))
    gpu_cost_daily = priced + unpriced * declared_price

    usage_hourly = grids.query(UsageFact, UsageFact.hour, hours, _usage_measures())
    upstream_hourly = grids.query(
        UpstreamFact, UpstreamFact.hour, hours, [func.sum(UpstreamFact.requests)]
    )[0]
    instances, gpus, weighted_util, measured_gpus, served, priced, unpriced = grids.query(
        GpuFact,
        GpuFact.hour,
        hours,
        [
            func.count(),
            func.sum(GpuFact.gpu_count),
            func.sum(GpuFact.utilisation_pct * GpuFact.gpu_count),
            func.sum(case((GpuFact.utilisation_pct.is_(None), 0), else_=GpuFact.gpu_count)),
            func.sum(GpuFact.tokens_served),
            *_gpu_cost_measures(gpu_price),
        ],
    )
    day_axis = np.datetime64(first_day) + np.arange(history_days)
    hour_axis = np.datetime64(hours.start.replace(tzinfo=None), "h") + np.arange(hours.buckets)

    def daily_arrays(rows: slice, labels: np.ndarray) -> DailyArrays:
        calls, tokens_in, tokens_out, errors, throttles, estimated = (m[rows] for m in usage_daily)
        has_billed = billed_facts[rows] > 0
        return DailyArrays(
            days=day_axis,
            cost=np.where(has_billed, billed[rows], estimated),
            billed_cost=billed[rows],
            estimated_cost=estimated,
            has_billed=has_billed,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            requests=calls,
            errors=errors,
            throttles=throttles,
            upstream_requests=upstream_daily[rows],
            gpu_cost=gpu_cost_daily[rows],
            workload_ids=labels,
        )

    def hourly_arrays(rows: slice, labels: np.ndarray) -> HourlyArrays:
        calls, tokens_in, tokens_out, errors, throttles, estimated = (m[rows] for m in usage_hourly)
        return HourlyArrays(
            hours=hour_axis,
            cost=estimated,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            requests=calls,
            errors=errors,
            throttles=throttles,
            upstream_requests=upstream_hourly[rows],
            workload_ids=labels,
        )

    workloads, nobody = slice(0, n), slice(n, n + 1)
    measured = measured_gpus[workloads] > 0
    gpu = GpuArrays(
        hours=hour_axis,
        instance_hours=instances[workloads],
        gpu_hours=gpus[workloads],
        # mean over the GPUs that reported a reading
        utilisation_pct=np.divide(
            weighted_util[workloads],
            measured_gpus[workloads],
            out=np.zeros((n, hours.buckets)),
            where=measured,
        ),
        measured=measured,
        cost=(priced + unpriced * declared_price)[workloads],
        tokens_served=served[workloads],
        workload_ids=ids,
    )
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


class _Grids:
    """Grouped queries scattered into `(W + 1, buckets)` arrays: one row per workload (in
    id order) and a last row for the facts attributed to none."""

    def __init__(self, session: Session, ids: np.ndarray, filtered: bool) -> None:
        self.session = session
        self.ids = ids
        self.filtered = filtered
        self.dialect = session.get_bind().dialect.name

    def query(
        self,
        table: Any,
        time_column: Any,
        axis: _Axis,
        measures: list[Any],
        where: Any = None,
    ) -> Any:
        """`measures` (SQL aggregates) per (workload, bucket of `axis`), one array each.

        `where` defaults to `time_column` within the axis (give it for a DATE column)."""
        if where is None:
            where = and_(time_column >= axis.start, time_column < axis.end)
        if self.filtered:
            where = and_(
                where, table.workload_id.in_(self.ids.tolist()) | table.workload_id.is_(None)
            )
        bucket = _bucket(time_column, axis, self.dialect)
        workload = func.coalesce(table.workload_id, literal_column(str(UNATTRIBUTED)))
        statement = (
            select(workload, bucket, *(func.coalesce(cast(m, Float), 0.0) for m in measures))
            .where(where)
            # by position: each expression is evaluated once (SQLite), and PostgreSQL does
            # not have to match the selected expressions textually
            .group_by(literal_column("1"), literal_column("2"))
        )
        rows = self.session.execute(statement).all()
        width = 2 + len(measures)
        flat = np.fromiter(
            itertools.chain.from_iterable(rows), dtype=np.float64, count=len(rows) * width
        ).reshape(len(rows), width)
        out = [np.zeros((self.ids.size + 1, axis.buckets)) for _ in measures]
        owners = flat[:, 0].astype(np.int64)
        position = np.minimum(np.searchsorted(self.ids, owners), max(self.ids.size - 1, 0))
        known = self.ids[position] == owners if self.ids.size else np.zeros(len(rows), bool)
        row = np.where(owners == UNATTRIBUTED, self.ids.size, np.where(known, position, -1))
        column = flat[:, 1].astype(np.int64)
        keep = (row >= 0) & (column >= 0) & (column < axis.buckets)
        for k, array in enumerate(out):  # (row, column) pairs are unique after GROUP BY
            array[row[keep], column[keep]] = flat[keep, 2 + k]
        return out


def _bucket(column: Any, axis: _Axis, dialect: str) -> Any:
    """The bucket of `axis` a date or UTC timestamp `column` falls in, as SQL (an integer;
    the caller's `where` keeps it within the axis, so it is never negative)."""
    if dialect == "sqlite":
        # julianday() is several times cheaper than strftime('%s') over many rows; the
        # 1e-6 keeps an exact hour from landing a rounding error below its bucket
        start = axis.start.timestamp() / 86400 + 2440587.5
        per_day = 86400 / axis.seconds
        offset = (func.julianday(column) - literal_column(repr(start))) * literal_column(
            repr(per_day)
        )
        return cast(offset + literal_column("1e-6"), Integer)
    seconds = cast(func.floor(extract("epoch", column)), BigInteger) - literal_column(
        str(int(axis.start.timestamp()))
    )
    return cast(seconds.self_group().op("/")(literal_column(str(axis.seconds))), Integer)


def _usage_measures() -> list[Any]:
    """invocations, input tokens (incl. cache reads and writes), output tokens, errors
    (client + server), throttles, token-based cost estimate."""
    return [
        func.sum(UsageFact.invocations),
        func.sum(
            UsageFact.input_tokens + UsageFact.cache_read_tokens + UsageFact.cache_write_tokens
        ),
        func.sum(UsageFact.output_tokens),
        func.sum(UsageFact.client_errors + UsageFact.server_errors),
        func.sum(UsageFact.throttles),
        func.sum(UsageFact.estimated_cost),
    ]


def _gpu_cost_measures(price: Any) -> list[Any]:
    """The cost of the priced instance-hours, and the count of those whose type has no
    price (priced afterwards at the workload's declared instance type)."""
    return [func.sum(price), func.sum(case((price.is_(None), 1), else_=0))]


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


def _price_of_instance_type(prices: dict[str, float]) -> Any:
    """A SQL CASE mapping `GpuFact.instance_type` to its hourly price (NULL: unknown)."""
    if not prices:
        return cast(None, Float)
    return case(
        *((GpuFact.instance_type == key, amount) for key, amount in sorted(prices.items())),
        else_=None,
    )


def _workloads(session: Session, workload_ids: Sequence[int] | None) -> list[tuple[Any, ...]]:
    statement = select(
        Workload.id, Workload.slug, Workload.budget_monthly, Workload.currency, Workload.gpu
    ).order_by(Workload.id)
    if workload_ids is not None:
        statement = statement.where(Workload.id.in_(list(workload_ids)))
    return [tuple(row) for row in session.execute(statement).all()]


def _last_collected_hour_end(session: Session, day_end: datetime) -> datetime:
    """The end of the latest hour with a usage or GPU fact before `day_end`, or `day_end`."""
    found: list[datetime | None] = [
        session.execute(select(func.max(table.hour)).where(table.hour < day_end)).scalar()
        for table in (UsageFact, GpuFact)
    ]
    latest = [moment for moment in found if moment is not None]
    if not latest:
        return day_end
    newest = max(moment if moment.tzinfo else moment.replace(tzinfo=UTC) for moment in latest)
    return newest.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


__all__ = ["UNATTRIBUTED", "FactArrays", "build_arrays"]

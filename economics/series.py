"""The core's inputs: dense `[workloads x time]` arrays that share one time axis.

Every array of one container has the same shape; row `i` is the same workload everywhere
(`workload_ids[i]` says which, for the caller; the core never looks at it). Money is a float
in the organisation's currency; counts are floats too (sums of hourly facts).

Fields other than `cost` may be left out: they read as zeros (a read-only broadcast view,
so a missing field costs no memory).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime
from functools import cached_property
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

from llmgov.economics._numeric import BoolArray, FloatArray, IndexArray, TimeArray

DAY = np.timedelta64(1, "D")
HOUR = np.timedelta64(1, "h")

DayLike: TypeAlias = date | datetime | str | np.datetime64
"""A calendar day in any of the forms `as_day` accepts."""
Rows: TypeAlias = slice | IndexArray | BoolArray | list[int]
"""Rows of a `select`: a slice, an index array (or list) or a `(W,)` mask."""


def as_day(value: DayLike) -> np.datetime64:
    """A calendar day as `datetime64[D]` (a datetime is cut to its date)."""
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, np.datetime64):
        # numpy's stubs lack the (datetime64, unit) overload that numpy accepts
        day: np.datetime64 = np.datetime64(value, "D")  # type: ignore[call-overload]
        return day
    return np.datetime64(value, "D")


def weekday(days: TimeArray) -> NDArray[np.int64]:
    """Monday=0 ... Sunday=6 for `datetime64[D]` (or `[h]`) values, any shape."""
    return (days.astype("datetime64[D]").astype(np.int64) + 3) % 7


def _as_mask(
    value: ArrayLike | None, default: bool, shape: tuple[int, ...], name: str
) -> BoolArray:
    """A bool field: the given `(W, T)` array, or `default` everywhere (no memory)."""
    if value is None:
        return np.broadcast_to(np.bool_(default), shape)
    mask = np.asarray(value, dtype=bool)
    if mask.shape != shape:
        raise ValueError(f"{name} has shape {mask.shape}, expected {shape}")
    return mask


def _fill_zeros(
    container: DailyArrays | HourlyArrays | GpuArrays, shape: tuple[int, ...], skip: set[str]
) -> None:
    for spec in fields(container):
        if spec.name in skip:
            continue
        value = getattr(container, spec.name)
        if value is None:
            object.__setattr__(container, spec.name, np.broadcast_to(np.float64(0.0), shape))
        else:
            value = np.asarray(value, dtype=np.float64)
            if value.shape != shape:
                raise ValueError(f"{spec.name} has shape {value.shape}, expected {shape}")
            object.__setattr__(container, spec.name, value)


def _assign(container: DailyArrays | HourlyArrays | GpuArrays, **values: object) -> None:
    """Set the fields of a frozen container as given (normalised afterwards)."""
    for name, value in values.items():
        object.__setattr__(container, name, value)


def _checked_axis(
    arrays: DailyArrays | HourlyArrays, axis_name: str, dtype: str, step: np.timedelta64
) -> TimeArray:
    """Normalise `arrays.<axis_name>` and `arrays.cost` in place and check they agree: the
    time axis consecutive and ascending, `cost` shaped `(W, len(axis))`."""
    axis: TimeArray = np.asarray(getattr(arrays, axis_name)).astype(dtype)
    object.__setattr__(arrays, axis_name, axis)
    cost = np.asarray(arrays.cost, dtype=np.float64)
    if cost.ndim != 2 or cost.shape[1] != axis.shape[0]:
        raise ValueError(f"cost has shape {cost.shape}, expected (W, {axis.shape[0]})")
    if axis.size > 1 and np.any(np.diff(axis) != step):
        raise ValueError(f"{axis_name} must be consecutive and ascending")
    object.__setattr__(arrays, "cost", cost)
    return axis


@dataclass(frozen=True, eq=False, init=False)
class DailyArrays:
    """Workloads x days. Column `j` is the day `days[j]`; the days are consecutive.

    Fields (all `(W, D)` float64 unless said otherwise):
    - `days`: `(D,)` datetime64[D], ascending and consecutive.
    - `cost`: spend per day, billed where billing has arrived, else the token estimate.
    - `billed_cost`, `estimated_cost`: billed cost (0 where not billed yet) and the token-based
      estimate (tokens x prices), kept apart for estimate drift.
    - `has_billed`: `(W, D)` bool, where a billed figure exists.
    - `input_tokens`, `output_tokens`, `requests` (LLM invocations), `errors` (client and
      server errors), `throttles`, `upstream_requests` (the requests that trigger LLM calls).
    - `gpu_cost`: self-hosted reservation cost per day (instance hours x hourly price); not
      part of `cost`.
    - `workload_ids`: `(W,)` labels for the caller (database ids), or None.

    Every field but `days`, `cost` and `workload_ids` may be left out (None): it reads as
    zeros (`has_billed`: False).
    """

    days: TimeArray
    cost: FloatArray
    billed_cost: FloatArray
    estimated_cost: FloatArray
    has_billed: BoolArray
    input_tokens: FloatArray
    output_tokens: FloatArray
    requests: FloatArray
    errors: FloatArray
    throttles: FloatArray
    upstream_requests: FloatArray
    gpu_cost: FloatArray
    workload_ids: NDArray[Any] | None

    def __init__(
        self,
        days: ArrayLike,
        cost: ArrayLike,
        billed_cost: ArrayLike | None = None,
        estimated_cost: ArrayLike | None = None,
        has_billed: ArrayLike | None = None,
        input_tokens: ArrayLike | None = None,
        output_tokens: ArrayLike | None = None,
        requests: ArrayLike | None = None,
        errors: ArrayLike | None = None,
        throttles: ArrayLike | None = None,
        upstream_requests: ArrayLike | None = None,
        gpu_cost: ArrayLike | None = None,
        workload_ids: NDArray[Any] | None = None,
    ) -> None:
        _assign(
            self,
            days=days,
            cost=cost,
            billed_cost=billed_cost,
            estimated_cost=estimated_cost,
            has_billed=has_billed,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            requests=requests,
            errors=errors,
            throttles=throttles,
            upstream_requests=upstream_requests,
            gpu_cost=gpu_cost,
            workload_ids=workload_ids,
        )
        _checked_axis(self, "days", "datetime64[D]", DAY)
        shape = self.cost.shape
        object.__setattr__(self, "has_billed", _as_mask(has_billed, False, shape, "has_billed"))
        _fill_zeros(self, shape, {"days", "has_billed", "workload_ids"})

    @property
    def n_workloads(self) -> int:
        return int(self.cost.shape[0])

    @property
    def n_days(self) -> int:
        return int(self.cost.shape[1])

    @property
    def tokens(self) -> FloatArray:
        """`(W, D)` input + output tokens (computed on each access: slice first)."""
        return self.input_tokens + self.output_tokens

    def through(self, as_of: DayLike) -> DailyArrays:
        """The columns up to and including `as_of` (views, no copy)."""
        end = day_index(self.days, as_of) + 1
        return self.select(slice(None), slice(0, end))

    def select(self, rows: Rows, columns: slice = slice(None)) -> DailyArrays:
        """A sub-array: `rows` (index array, mask or slice) and `columns` (a slice)."""
        values = {
            spec.name: _take(getattr(self, spec.name), rows, columns)
            for spec in fields(self)
            if spec.name not in ("days", "workload_ids")
        }
        ids = None if self.workload_ids is None else np.asarray(self.workload_ids)[rows]
        return DailyArrays(days=self.days[columns], workload_ids=ids, **values)


@dataclass(frozen=True, eq=False, init=False)
class HourlyArrays:
    """Workloads x hours (the recent weeks), from the near-real-time usage metrics.

    Fields (all `(W, H)` float64): `cost` (token-based estimate per hour), `input_tokens`,
    `output_tokens`, `requests` (invocations), `errors`, `throttles`, `upstream_requests`;
    `hours`: `(H,)` datetime64[h] UTC, ascending and consecutive; `workload_ids` as in
    `DailyArrays`. Fields other than `hours`, `cost` and `workload_ids` left out (None) read
    as zeros.
    """

    hours: TimeArray
    cost: FloatArray
    input_tokens: FloatArray
    output_tokens: FloatArray
    requests: FloatArray
    errors: FloatArray
    throttles: FloatArray
    upstream_requests: FloatArray
    workload_ids: NDArray[Any] | None

    def __init__(
        self,
        hours: ArrayLike,
        cost: ArrayLike,
        input_tokens: ArrayLike | None = None,
        output_tokens: ArrayLike | None = None,
        requests: ArrayLike | None = None,
        errors: ArrayLike | None = None,
        throttles: ArrayLike | None = None,
        upstream_requests: ArrayLike | None = None,
        workload_ids: NDArray[Any] | None = None,
    ) -> None:
        _assign(
            self,
            hours=hours,
            cost=cost,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            requests=requests,
            errors=errors,
            throttles=throttles,
            upstream_requests=upstream_requests,
            workload_ids=workload_ids,
        )
        _checked_axis(self, "hours", "datetime64[h]", HOUR)
        _fill_zeros(self, self.cost.shape, {"hours", "workload_ids"})

    @property
    def n_workloads(self) -> int:
        return int(self.cost.shape[0])

    @property
    def tokens(self) -> FloatArray:
        """`(W, H)` input + output tokens (computed on each access)."""
        return self.input_tokens + self.output_tokens

    def select(self, rows: Rows, columns: slice = slice(None)) -> HourlyArrays:
        """A sub-array: `rows` (index array, mask or slice) and `columns` (a slice)."""
        values = {
            spec.name: _take(getattr(self, spec.name), rows, columns)
            for spec in fields(self)
            if spec.name not in ("hours", "workload_ids")
        }
        ids = None if self.workload_ids is None else np.asarray(self.workload_ids)[rows]
        return HourlyArrays(hours=self.hours[columns], workload_ids=ids, **values)


@dataclass(frozen=True, eq=False, init=False)
class GpuArrays:
    """Self-hosted GPU fleets, workloads x hours.

    Fields (all `(W, H)` float64):
    - `instance_hours`: instances provisioned (reporting) in the hour; one instance for one
      hour is one instance-hour, busy or idle.
    - `gpu_hours`: GPUs provisioned in the hour.
    - `utilisation_pct`: mean GPU utilisation 0-100 over the GPUs that reported one.
    - `measured`: `(W, H)` bool, where a utilisation reading exists (default: everywhere);
      an hour without one is never called idle.
    - `cost`: what the provisioned instances cost in the hour (instance-hours x hourly price).
    - `tokens_served`: tokens the fleet served in the hour (input + output).
    `hours`: `(H,)` datetime64[h]; `workload_ids` as in `DailyArrays`. Fields left out
    (None) read as zeros (`measured`: True).
    """

    hours: TimeArray
    instance_hours: FloatArray
    gpu_hours: FloatArray
    utilisation_pct: FloatArray
    measured: BoolArray
    cost: FloatArray
    tokens_served: FloatArray
    workload_ids: NDArray[Any] | None

    def __init__(
        self,
        hours: ArrayLike,
        instance_hours: ArrayLike,
        gpu_hours: ArrayLike | None = None,
        utilisation_pct: ArrayLike | None = None,
        measured: ArrayLike | None = None,
        cost: ArrayLike | None = None,
        tokens_served: ArrayLike | None = None,
        workload_ids: NDArray[Any] | None = None,
    ) -> None:
        _assign(
            self,
            hours=hours,
            instance_hours=instance_hours,
            gpu_hours=gpu_hours,
            utilisation_pct=utilisation_pct,
            measured=measured,
            cost=cost,
            tokens_served=tokens_served,
            workload_ids=workload_ids,
        )
        hours_axis: TimeArray = np.asarray(hours).astype("datetime64[h]")
        object.__setattr__(self, "hours", hours_axis)
        shape = np.shape(instance_hours)
        if len(shape) != 2 or shape[1] != hours_axis.shape[0]:
            raise ValueError(
                f"instance_hours has shape {shape}, expected (W, {hours_axis.shape[0]})"
            )
        object.__setattr__(self, "measured", _as_mask(measured, True, shape, "measured"))
        _fill_zeros(self, shape, {"hours", "workload_ids", "measured"})

    @property
    def n_workloads(self) -> int:
        return int(self.instance_hours.shape[0])

    @cached_property
    def fleet_rows(self) -> IndexArray:
        """Rows with any provisioned hour (most workloads have no fleet: skip them)."""
        return np.flatnonzero(np.any(self.instance_hours > 0, axis=1))

    def select(self, rows: Rows, columns: slice = slice(None)) -> GpuArrays:
        """A sub-array: `rows` (index array, mask or slice) and `columns` (a slice)."""
        values = {
            spec.name: _take(getattr(self, spec.name), rows, columns)
            for spec in fields(self)
            if spec.name not in ("hours", "workload_ids")
        }
        ids = None if self.workload_ids is None else np.asarray(self.workload_ids)[rows]
        return GpuArrays(hours=self.hours[columns], workload_ids=ids, **values)


def _take(values: NDArray[Any], rows: Rows, columns: slice) -> NDArray[Any]:
    if isinstance(rows, slice):
        return values[rows, columns]
    taken: NDArray[Any] = values[np.asarray(rows)][:, columns]
    return taken


def day_index(days: TimeArray, as_of: DayLike) -> int:
    """The column of `as_of` in a consecutive `days` axis; ValueError when outside it."""
    if days.size == 0:
        raise ValueError("the days axis is empty")
    offset = int((as_day(as_of) - days[0]) / DAY)
    if not 0 <= offset < days.size:
        raise ValueError(f"as_of {as_day(as_of)} is outside the days {days[0]}..{days[-1]}")
    return offset


__all__ = [
    "DAY",
    "HOUR",
    "DailyArrays",
    "DayLike",
    "GpuArrays",
    "HourlyArrays",
    "Rows",
    "as_day",
    "day_index",
    "weekday",
]

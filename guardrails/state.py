"""Breaker state per workload, stored in `Workload.breaker["state"]` (no table of its own).

    armed ──(a trigger)──► fired ──Trip──► tripped ──Reset──► armed
      ▲                      │ └─Ignore 24h─► ignored (until T; armed again after T)
      └──(condition clears, or Raise budget)

Trip is allowed from any state but tripped (an owner may stop spend before it fires).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from llmgov.governance.breaker_policy import STATE_KEY
from llmgov.models.registry import Workload


class Status(enum.StrEnum):
    ARMED = "armed"
    FIRED = "fired"  # fired, awaiting the owner's decision
    TRIPPED = "tripped"
    IGNORED = "ignored"  # until `ignored_until`
    # Intents, committed before AWS is touched, with the plan and the state to go back to:
    # a process that dies between AWS and the database leaves one of these, and the
    # reconciler (guardrails.reconcile) finishes the job from it.
    TRIPPING = "tripping"
    RESETTING = "resetting"


IN_PROGRESS = (Status.TRIPPING, Status.RESETTING)


@dataclass(frozen=True)
class BreakerState:
    status: Status = Status.ARMED
    since: datetime | None = None  # when this status began
    by: str | None = None  # who moved it here (Slack user id or "system")
    firing_id: str | None = None  # the current firing, for idempotent notifications
    triggers: tuple[dict[str, Any], ...] = ()  # Trigger.to_json() of the current firing
    ignored_until: datetime | None = None
    dry_run: bool = False  # the trip was a dry run: nothing was done in AWS
    applied: tuple[dict[str, Any], ...] = ()  # what Trip did (or would do), for Reset
    previous: dict[str, Any] | None = None  # an intent's state to go back to (to_json form)
    would_trip: dict[str, Any] | None = None  # the last dry-run trip: at, by, plan
    # the workload whose trip denied a principal this one shares (its spend is stopped too)
    stopped_by: str | None = None
    # a reset asked for, waiting for an admin's approval: {"by", "reason", "at"}
    reset_request: dict[str, Any] | None = None
    # the check that the deny is in force (guardrails.confirm): result, at, detail
    confirmation: dict[str, Any] | None = None

    def effective(self, now: datetime) -> BreakerState:
        """The state as of `now`: an ignore that has expired is armed again."""
        if self.status is Status.IGNORED and self.ignored_until and now >= self.ignored_until:
            return replace(self, status=Status.ARMED, since=self.ignored_until, ignored_until=None)
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "since": _iso(self.since),
            "by": self.by,
            "firing_id": self.firing_id,
            "triggers": list(self.triggers),
            "ignored_until": _iso(self.ignored_until),
            "dry_run": self.dry_run,
            "applied": list(self.applied),
            **({"previous": self.previous} if self.previous else {}),
            **({"would_trip": self.would_trip} if self.would_trip else {}),
            **({"stopped_by": self.stopped_by} if self.stopped_by else {}),
            **({"reset_request": self.reset_request} if self.reset_request else {}),
            **({"confirmation": self.confirmation} if self.confirmation else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> BreakerState:
        if not data:
            return cls()
        try:
            status = Status(data.get("status", Status.ARMED.value))
        except ValueError:
            status = Status.ARMED  # an unknown status (hand-edited data) is treated as armed
        return cls(
            status=status,
            since=_parse(data.get("since")),
            by=data.get("by"),
            firing_id=data.get("firing_id"),
            triggers=tuple(data.get("triggers") or ()),
            ignored_until=_parse(data.get("ignored_until")),
            dry_run=bool(data.get("dry_run", False)),
            applied=tuple(data.get("applied") or ()),
            previous=data.get("previous") or None,
            would_trip=data.get("would_trip") or None,
            stopped_by=data.get("stopped_by") or None,
            reset_request=data.get("reset_request") or None,
            confirmation=data.get("confirmation") or None,
        )


def load_state(workload: Workload) -> BreakerState:
    return state_of(workload.breaker)


def state_of(breaker: Mapping[str, Any] | None) -> BreakerState:
    """The state inside a `Workload.breaker` value (armed when there is none)."""
    return BreakerState.from_json((breaker or {}).get(STATE_KEY))


def store_state(workload: Workload, state: BreakerState) -> None:
    """Write `state` back; a new dict so SQLAlchemy sees the JSON column change."""
    workload.breaker = {**(workload.breaker or {}), STATE_KEY: state.to_json()}


def restore_state(workload: Workload, stored: dict[str, Any] | None) -> None:
    """Write back a state exactly as it was stored (None: no state at all)."""
    breaker = {key: value for key, value in (workload.breaker or {}).items() if key != STATE_KEY}
    workload.breaker = {**breaker, **({STATE_KEY: stored} if stored is not None else {})}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


__all__ = [
    "IN_PROGRESS",
    "BreakerState",
    "Status",
    "load_state",
    "restore_state",
    "state_of",
    "store_state",
]

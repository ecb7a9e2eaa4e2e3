"""Early warning: per-minute Bedrock usage → minute detectors → findings → the alert lifecycle.

`evaluate_minutes` takes the minute sums of every model series one run read (plain arrays:
nothing here imports a collector), maps each series to its workload the way the hourly
facts were attributed (the series key's most recent attributed `UsageFact`), and judges each
workload against its baseline: the same hour on the 7 previous days of hourly facts. The
findings then go through `governance.alerts.sync` for the minute kinds only: raised once,
kept while they last (an open alert is judged on the eased condition), resolved when gone.

A series no hourly fact has attributed yet (a model first used minutes ago) is left out
until the hourly collector's attribution pass has seen it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from llmgov.economics.detectors import Detection
from llmgov.economics.minute_detectors import (
    MinuteArrays,
    MinuteThresholds,
    baseline_from_hours,
    minute_retry_storm,
    runaway,
)
from llmgov.governance import alerts as alert_lifecycle
from llmgov.governance.findings import MINUTE_KINDS, Finding, Kind, fingerprint, format_money
from llmgov.models.facts import UsageFact
from llmgov.models.governance import Alert, AlertStatus
from llmgov.models.registry import OrganisationProfile, Workload

BASELINE_DAYS = 7
ATTRIBUTION_LOOKBACK = timedelta(days=3)
_IN_CHUNK = 500


@dataclass
class MinuteInput:
    """What one run read: one row per model series, `(S, T)` arrays over `minutes`."""

    series_keys: list[str]
    minutes: np.ndarray  # (T,) datetime64[m]
    invocations: np.ndarray
    tokens: np.ndarray
    errors: np.ndarray
    throttles: np.ndarray
    cost: np.ndarray


@dataclass
class EarlyWarningRun:
    findings: list[Finding] = field(default_factory=list)
    changes: list[alert_lifecycle.AlertChange] = field(default_factory=list)
    workloads: int = 0
    unattributed_series: int = 0
    judged_until: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "workloads": self.workloads,
            "unattributed_series": self.unattributed_series,
            "judged_until": self.judged_until.isoformat() if self.judged_until else None,
            "findings": [f.kind + ":" + (f.workload or "-") for f in self.findings],
            "changes": [c.to_json() for c in self.changes],
        }


def evaluate_minutes(
    session: Session,
    data: MinuteInput,
    now: datetime,
    thresholds: MinuteThresholds | None = None,
    *,
    resolve: bool = True,
) -> EarlyWarningRun:
    """Findings for the workloads behind `data`, synced into the alerts (not committed).

    `resolve=False` (some scope could not be read) raises and updates, resolves nothing.
    """
    thresholds = thresholds or MinuteThresholds()
    run = EarlyWarningRun()
    owners = _series_workloads(session, data.series_keys, now)
    run.unattributed_series = sum(1 for key in data.series_keys if key not in owners)
    workload_ids = sorted(set(owners.values()))
    workloads = _load_workloads(session, workload_ids)
    workload_ids = [w for w in workload_ids if w in workloads]
    run.workloads = len(workload_ids)
    findings: list[Finding] = []
    if workload_ids and data.minutes.size:
        row_of = {workload_id: row for row, workload_id in enumerate(workload_ids)}
        # series -> workload: a (W, S) 0/1 matrix, so each measure is one product
        fold = np.zeros((len(workload_ids), len(data.series_keys)))
        for column, key in enumerate(data.series_keys):
            if owners.get(key) in row_of:
                fold[row_of[owners[key]], column] = 1.0
        arrays = MinuteArrays(
            data.minutes,
            fold @ data.invocations,
            fold @ data.tokens,
            fold @ data.errors,
            fold @ data.throttles,
            fold @ data.cost,
        )
        last_minute = _to_datetime(data.minutes[-1])
        run.judged_until = last_minute + timedelta(minutes=1)
        baseline = baseline_from_hours(
            *_same_hour_history(session, workload_ids, last_minute.replace(minute=0))
        )
        ongoing = _ongoing(session, workload_ids)
        budget_left = _budget_left(session, [workloads[w] for w in workload_ids], last_minute)
        currency = _currency(session)
        storms = minute_retry_storm(
            arrays, baseline, thresholds, ongoing[Kind.MINUTE_RETRY_STORM.value]
        )
        runaways = runaway(arrays, baseline, budget_left, thresholds, ongoing[Kind.RUNAWAY.value])
        for detection in (storms, runaways):
            findings.extend(
                _findings(detection, [workloads[w] for w in workload_ids], currency, thresholds)
            )
    run.findings = findings
    run.changes = alert_lifecycle.sync(
        session, findings, now, kinds=MINUTE_KINDS if resolve else ()
    )
    return run


# ---- findings -------------------------------------------------------------------------


def _findings(
    detection: Detection, workloads: list[Workload], currency: str, thresholds: MinuteThresholds
) -> list[Finding]:
    out = []
    for record in detection.records():
        workload = workloads[record["row"]]
        e = record["evidence"]
        since = record.get("since", "")
        if detection.kind == Kind.MINUTE_RETRY_STORM.value:
            severity = "critical" if e["surge_ratio"] >= 2 * thresholds.storm_ratio else "warning"
            message = (
                f"Retry storm since {since[11:16]} UTC: {e['attempts_per_minute']:,.0f} attempts "
                f"a minute ({e['surge_ratio']:.1f}× the usual for this hour), "
                f"{e['failure_share_pct']:.0f}% failing or throttled; about "
                f"{format_money(record['money_at_stake'], currency)} a day if it goes on."
            )
        else:
            burn = bool(e["budget_burn"])
            severity = (
                "critical"
                if burn or e["surge_ratio"] >= 2 * thresholds.runaway_ratio
                else "warning"
            )
            message = (
                f"Runaway usage since {since[11:16]} UTC: {e['invocations_per_minute']:,.0f} "
                f"calls and {e['tokens_per_minute']:,.0f} tokens a minute "
                f"({e['surge_ratio']:.1f}× the usual for this hour), "
                f"{format_money(e['cost_per_minute'], currency)} a minute"
            )
            if np.isfinite(e["hours_to_budget"]):
                message += (
                    f"; the month's budget runs out in {e['hours_to_budget']:.0f} h at this rate"
                )
            message += "."
        owner = workload.owner
        out.append(
            Finding(
                kind=detection.kind,
                severity=severity,
                workload=workload.slug,
                owner=owner.slack_id if owner is not None else None,
                team=workload.team.slug if workload.team is not None else None,
                amount=Decimal(str(round(record["money_at_stake"], 2))),
                currency=currency,
                message=message,
                details={
                    **{k: round(v, 4) for k, v in e.items() if np.isfinite(v)},
                    "since": since,
                },
                fingerprint=fingerprint(detection.kind, workload.slug),
            )
        )
    return out


# ---- what the database knows ------------------------------------------------------------


def _series_workloads(session: Session, keys: list[str], now: datetime) -> dict[str, int]:
    """series key -> the workload its most recent attributed hourly fact belongs to."""
    found: dict[str, tuple[datetime, int]] = {}
    since = now - ATTRIBUTION_LOOKBACK
    for start in range(0, len(keys), _IN_CHUNK):
        chunk = keys[start : start + _IN_CHUNK]
        rows = session.execute(
            select(UsageFact.series_key, UsageFact.hour, UsageFact.workload_id).where(
                UsageFact.series_key.in_(chunk),
                UsageFact.workload_id.is_not(None),
                UsageFact.hour >= since,
            )
        )
        for key, hour, workload_id in rows:
            if key not in found or hour > found[key][0]:
                found[key] = (hour, workload_id)
    return {key: workload_id for key, (_, workload_id) in found.items()}


def _load_workloads(session: Session, ids: list[int]) -> dict[int, Workload]:
    out: dict[int, Workload] = {}
    for start in range(0, len(ids), _IN_CHUNK):
        for workload in session.scalars(
            select(Workload)
            .where(Workload.id.in_(ids[start : start + _IN_CHUNK]))
            .options(selectinload(Workload.owner), selectinload(Workload.team))
        ):
            if workload.status != "retired":
                out[workload.id] = workload
    return out


def _same_hour_history(
    session: Session, workload_ids: list[int], hour: datetime
) -> tuple[np.ndarray, ...]:
    """(W, 7) hourly sums of the same hour on the 7 previous days (NaN: no facts that hour):
    invocations, tokens, errors, throttles, estimated cost."""
    hours = [hour - timedelta(days=day) for day in range(1, BASELINE_DAYS + 1)]
    column_of = {h: index for index, h in enumerate(hours)}
    row_of = {workload_id: row for row, workload_id in enumerate(workload_ids)}
    shape = (len(workload_ids), len(hours))
    out = tuple(np.full(shape, np.nan) for _ in range(5))
    for start in range(0, len(workload_ids), _IN_CHUNK):
        rows = session.execute(
            select(
                UsageFact.workload_id,
                UsageFact.hour,
                func.sum(UsageFact.invocations),
                func.sum(
                    UsageFact.input_tokens
                    + UsageFact.output_tokens
                    + UsageFact.cache_read_tokens
                    + UsageFact.cache_write_tokens
                ),
                func.sum(UsageFact.client_errors + UsageFact.server_errors),
                func.sum(UsageFact.throttles),
                func.sum(func.coalesce(UsageFact.estimated_cost, 0)),
            )
            .where(
                UsageFact.workload_id.in_(workload_ids[start : start + _IN_CHUNK]),
                UsageFact.hour.in_(hours),
            )
            .group_by(UsageFact.workload_id, UsageFact.hour)
        )
        for workload_id, fact_hour, *values in rows:
            column = column_of.get(_utc(fact_hour))
            if column is None:
                continue
            for target, value in zip(out, values, strict=True):
                target[row_of[workload_id], column] = float(value or 0)
    return out


def _budget_left(session: Session, workloads: list[Workload], moment: datetime) -> np.ndarray:
    """The monthly budget minus this month's token-based estimate so far; NaN: no budget."""
    month = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    ids = [w.id for w in workloads]
    spent: dict[int, float] = defaultdict(float)
    for start in range(0, len(ids), _IN_CHUNK):
        rows = session.execute(
            select(UsageFact.workload_id, func.sum(func.coalesce(UsageFact.estimated_cost, 0)))
            .where(UsageFact.workload_id.in_(ids[start : start + _IN_CHUNK]))
            .where(UsageFact.hour >= month)
            .group_by(UsageFact.workload_id)
        )
        spent.update({workload_id: float(total or 0) for workload_id, total in rows})
    return np.array(
        [
            float(w.budget_monthly) - spent[w.id] if w.budget_monthly is not None else np.nan
            for w in workloads
        ]
    )


def _ongoing(session: Session, workload_ids: list[int]) -> dict[str, np.ndarray]:
    row_of = {workload_id: row for row, workload_id in enumerate(workload_ids)}
    out = {kind: np.zeros(len(workload_ids), dtype=bool) for kind in MINUTE_KINDS}
    for kind, workload_id in session.execute(
        select(Alert.kind, Alert.workload_id).where(
            Alert.kind.in_(sorted(MINUTE_KINDS)), Alert.status != AlertStatus.RESOLVED.value
        )
    ):
        if workload_id in row_of:
            out[kind][row_of[workload_id]] = True
    return out


def _currency(session: Session) -> str:
    profile = session.get(OrganisationProfile, 1)
    return profile.currency if profile else "USD"


def _to_datetime(minute: np.datetime64) -> datetime:
    return datetime.fromisoformat(str(minute.astype("datetime64[m]"))).replace(tzinfo=UTC)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


__all__ = ["EarlyWarningRun", "MinuteInput", "evaluate_minutes"]

"""The alert lifecycle: one `Alert` per finding fingerprint, and what each run should notify.

States: open → acknowledged | snoozed → resolved (and a resolved alert reopens when its
condition comes back). `sync` compares this run's findings with the stored alerts and returns
only the changes worth a Slack message:

| situation                                             | change         | Slack                      |
|-------------------------------------------------------|----------------|----------------------------|
| a fingerprint never seen, or seen and resolved        | `new`          | a new post                 |
| severity rose above the severity last notified        | `escalated`    | thread reply + update post |
| a snooze ended and the condition still holds          | `snooze_ended` | thread reply + update post |
| an unresolved alert's condition is no longer found    | `resolved`     | update post ("resolved")   |
| anything else (same or lower severity, new amounts)   | nothing        | nothing: no repeats        |

A rise in severity re-notifies even an acknowledged or snoozed alert (what was acknowledged
was the lesser condition) and returns it to `open`. A drop in severity does not lower the
notified level, so a condition flapping between warning and critical notifies only once.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from llmgov.governance import audit
from llmgov.governance.findings import Finding, jsonable, severity_rank
from llmgov.governance.permissions import authorise_alert
from llmgov.models.errors import BadInput
from llmgov.models.governance import Alert, AlertStatus
from llmgov.models.registry import Workload

MAX_SNOOZE_DAYS = 90
_IN_CHUNK = 500  # keep IN (...) lists well under every backend's parameter limit


class ChangeAction(enum.StrEnum):
    NEW = "new"
    ESCALATED = "escalated"
    SNOOZE_ENDED = "snooze_ended"
    RESOLVED = "resolved"


@dataclass
class AlertChange:
    """What to tell Slack about one alert after this run."""

    action: ChangeAction
    alert: Alert
    finding: Finding | None  # None when resolved: the condition is gone
    previous_severity: str | None = None
    reopened: bool = False  # a `new` change for an alert that had been resolved before

    @property
    def alert_id(self) -> int:
        return self.alert.id

    def to_json(self) -> dict:
        return {
            "action": self.action.value,
            "alert_id": self.alert.id,
            "fingerprint": self.alert.fingerprint,
            "kind": self.alert.kind,
            "severity": self.alert.severity,
            "previous_severity": self.previous_severity,
            "reopened": self.reopened,
        }


def sync(
    session: Session,
    findings: Sequence[Finding],
    now: datetime,
    kinds: Iterable[str] | None = None,
) -> list[AlertChange]:
    """Apply this run's findings to the stored alerts; return the changes to notify.

    `kinds` limits which unresolved alerts may be resolved by their absence (the kinds this
    run evaluated); by default every kind was evaluated.
    """
    latest = _dedupe(findings)
    stored = _stored_alerts(session, latest)
    slug_ids = _workload_ids(session, {f.workload for f in latest.values() if f.workload})
    changes: list[AlertChange] = []

    for fp, finding in latest.items():
        alert = stored.get(fp)
        if alert is None:
            alert = Alert(fingerprint=fp, kind=finding.kind, first_seen_at=now)
            _apply(alert, finding, slug_ids, now)
            alert.status = AlertStatus.OPEN.value
            alert.notified_severity = finding.severity
            session.add(alert)  # its id (for buttons and outbox keys) comes with the flush below
            changes.append(AlertChange(ChangeAction.NEW, alert, finding))
            continue
        previous = alert.severity
        if alert.status == AlertStatus.RESOLVED.value:
            _apply(alert, finding, slug_ids, now)
            alert.status = AlertStatus.OPEN.value
            alert.first_seen_at = now
            alert.resolved_at = None
            alert.acknowledged_by = None
            alert.snoozed_until = None
            alert.notified_severity = finding.severity
            alert.channel_id = None  # a fresh post; the old one keeps saying "resolved"
            alert.message_ts = None
            changes.append(AlertChange(ChangeAction.NEW, alert, finding, previous, reopened=True))
            continue
        _apply(alert, finding, slug_ids, now)
        if severity_rank(finding.severity) > severity_rank(alert.notified_severity):
            alert.status = AlertStatus.OPEN.value
            alert.snoozed_until = None
            alert.notified_severity = finding.severity
            changes.append(AlertChange(ChangeAction.ESCALATED, alert, finding, previous))
        elif alert.status == AlertStatus.SNOOZED.value and _snooze_over(alert, now):
            alert.status = AlertStatus.OPEN.value
            alert.snoozed_until = None
            changes.append(AlertChange(ChangeAction.SNOOZE_ENDED, alert, finding, previous))

    evaluated = None if kinds is None else set(kinds)
    for fp, alert in stored.items():
        if fp in latest or alert.status == AlertStatus.RESOLVED.value:
            continue
        if evaluated is not None and alert.kind not in evaluated:
            continue
        alert.status = AlertStatus.RESOLVED.value
        alert.resolved_at = now
        alert.snoozed_until = None
        changes.append(AlertChange(ChangeAction.RESOLVED, alert, None, alert.severity))
    session.flush()
    return changes


def refusal(
    session: Session, alert_id: int, user: str, action: str, admins: Collection[str]
) -> str | None:
    """None when `user` may `action` (acknowledge, snooze) this alert; else the reason,
    with the refusal audited in `session` (governance/permissions.py has the rule)."""
    alert = _get_unresolved(session, alert_id, action)
    workload = session.get(Workload, alert.workload_id) if alert.workload_id else None
    decision = authorise_alert(user, action, workload, admins)
    if decision:
        return None
    audit.record(
        session,
        actor=user,
        action=f"alert.{action}",
        entity="alert",
        entity_key=str(alert.id),
        before=_state(alert),
        outcome="refused",
        reason=decision.reason,
    )
    session.flush()
    return decision.reason


def acknowledge(session: Session, alert_id: int, user: str, now: datetime) -> Alert:
    """Mark an alert acknowledged by `user` (a Slack id); audited. Idempotent."""
    alert = _get_unresolved(session, alert_id, "acknowledge")
    before = _state(alert)
    alert.status = AlertStatus.ACKNOWLEDGED.value
    alert.acknowledged_by = user
    alert.snoozed_until = None
    audit.record(
        session,
        actor=user,
        action="alert.acknowledge",
        entity="alert",
        entity_key=str(alert.id),
        before=before,
        after=_state(alert),
    )
    session.flush()
    return alert


def snooze(session: Session, alert_id: int, user: str, now: datetime, days: int = 7) -> Alert:
    """Silence an alert for `days` (1-90); it re-notifies then if still firing. Audited."""
    if not isinstance(days, int) or not 1 <= days <= MAX_SNOOZE_DAYS:
        raise BadInput(
            f"snooze for {days!r} days is not possible: choose 1 to {MAX_SNOOZE_DAYS} days"
        )
    alert = _get_unresolved(session, alert_id, "snooze")
    before = _state(alert)
    alert.status = AlertStatus.SNOOZED.value
    alert.snoozed_until = now + timedelta(days=days)
    alert.acknowledged_by = user
    audit.record(
        session,
        actor=user,
        action="alert.snooze",
        entity="alert",
        entity_key=str(alert.id),
        before=before,
        after=_state(alert),
    )
    session.flush()
    return alert


def unresolved_for_workloads(session: Session, workload_ids: Iterable[int]) -> list[Alert]:
    """Open, acknowledged and snoozed alerts of these workloads, most severe first."""
    ids = list(workload_ids)
    alerts: list[Alert] = []
    for start in range(0, len(ids), _IN_CHUNK):
        alerts.extend(
            session.scalars(
                select(Alert).where(
                    Alert.workload_id.in_(ids[start : start + _IN_CHUNK]),
                    Alert.status != AlertStatus.RESOLVED.value,
                )
            )
        )
    return sorted(alerts, key=lambda a: (-severity_rank(a.severity), -a.amount, a.id))


# ---- helpers ---------------------------------------------------------------------------


def _dedupe(findings: Sequence[Finding]) -> dict[str, Finding]:
    """One finding per fingerprint: the most severe (then the largest) if a check repeats."""
    latest: dict[str, Finding] = {}
    for finding in findings:
        seen = latest.get(finding.fingerprint)
        if seen is None or (finding.rank, finding.amount) > (seen.rank, seen.amount):
            latest[finding.fingerprint] = finding
    return latest


def _stored_alerts(session: Session, latest: dict[str, Finding]) -> dict[str, Alert]:
    """Every unresolved alert, plus the resolved ones this run's findings may reopen."""
    alerts = {
        a.fingerprint: a
        for a in session.scalars(select(Alert).where(Alert.status != AlertStatus.RESOLVED.value))
    }
    missing = [fp for fp in latest if fp not in alerts]
    for start in range(0, len(missing), _IN_CHUNK):
        chunk = missing[start : start + _IN_CHUNK]
        for alert in session.scalars(select(Alert).where(Alert.fingerprint.in_(chunk))):
            alerts[alert.fingerprint] = alert
    return alerts


def _workload_ids(session: Session, slugs: set[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    ordered = sorted(slugs)
    for start in range(0, len(ordered), _IN_CHUNK):
        chunk = ordered[start : start + _IN_CHUNK]
        rows = session.execute(select(Workload.slug, Workload.id).where(Workload.slug.in_(chunk)))
        ids.update({slug: workload_id for slug, workload_id in rows})
    return ids


def _apply(alert: Alert, finding: Finding, slug_ids: dict[str, int], now: datetime) -> None:
    """Copy the latest facts of the condition onto the alert (no notification by itself)."""
    alert.kind = finding.kind
    alert.severity = finding.severity
    alert.workload_id = slug_ids.get(finding.workload) if finding.workload else None
    alert.amount = finding.amount
    alert.currency = finding.currency
    alert.message = finding.message
    alert.details = jsonable(
        {
            **finding.details,
            "owner": finding.owner,
            "team": finding.team,
            "workload": finding.workload,
        }
    )
    alert.last_seen_at = now


def _snooze_over(alert: Alert, now: datetime) -> bool:
    return alert.snoozed_until is None or alert.snoozed_until <= now


def _get_unresolved(session: Session, alert_id: int, verb: str) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise BadInput(f"there is no alert {alert_id}; it may have been removed")
    if alert.status == AlertStatus.RESOLVED.value:
        raise BadInput(f"alert {alert_id} is already resolved; nothing to {verb}")
    return alert


def _state(alert: Alert) -> dict:
    return {
        "status": alert.status,
        "acknowledged_by": alert.acknowledged_by,
        "snoozed_until": alert.snoozed_until.isoformat() if alert.snoozed_until else None,
    }


__all__ = [
    "AlertChange",
    "ChangeAction",
    "acknowledge",
    "snooze",
    "sync",
    "unresolved_for_workloads",
]

"""The alert lifecycle: posted once, re-notified only on a severity rise or a snooze's end,
resolved when the condition clears, reopened when it returns; ack and snooze are audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from llmgov.governance import alerts
from llmgov.governance.alerts import ChangeAction
from llmgov.governance.findings import Finding
from llmgov.models.errors import BadInput
from llmgov.models.governance import Alert
from llmgov.models.registry import AuditEvent

T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)


def finding(severity="warning", workload=None, kind="spend_anomaly", amount="50", fp=None):
    return Finding(
        kind=kind,
        severity=severity,
        workload=workload,
        owner=None,
        team=None,
        amount=Decimal(amount),
        currency="USD",
        message=f"{kind} is {severity}",
        details={"n": 1},
        fingerprint=fp or f"fp-{kind}-{workload}",
    )


def actions(changes):
    return [(c.action, c.alert.fingerprint) for c in changes]


def test_new_finding_opens_one_alert_and_a_repeat_changes_nothing(session, registry):
    w = registry.workload("search")
    first = alerts.sync(session, [finding(workload="search")], T0)
    assert actions(first) == [(ChangeAction.NEW, "fp-spend_anomaly-search")]
    alert = first[0].alert
    assert alert.status == "open" and alert.workload_id == w.id
    assert alert.notified_severity == "warning"

    again = alerts.sync(session, [finding(workload="search", amount="80")], T0 + timedelta(hours=1))
    assert again == []  # no repeats
    session.refresh(alert)
    assert alert.amount == Decimal("80")  # the numbers follow the condition silently
    assert alert.last_seen_at == T0 + timedelta(hours=1)
    assert session.scalars(select(Alert)).all() == [alert]


def test_severity_rise_renotifies_once_and_a_flap_does_not(session, registry):
    registry.workload("search")
    alerts.sync(session, [finding("warning", "search")], T0)
    rose = alerts.sync(session, [finding("critical", "search")], T0 + timedelta(hours=1))
    assert [(c.action, c.previous_severity) for c in rose] == [(ChangeAction.ESCALATED, "warning")]
    # critical -> warning -> critical: notified at critical already, so silence
    assert alerts.sync(session, [finding("warning", "search")], T0 + timedelta(hours=2)) == []
    assert alerts.sync(session, [finding("critical", "search")], T0 + timedelta(hours=3)) == []


def test_cleared_condition_resolves_and_a_return_reopens(session, registry):
    registry.workload("search")
    alerts.sync(session, [finding(workload="search")], T0)
    gone = alerts.sync(session, [], T0 + timedelta(days=1))
    assert actions(gone) == [(ChangeAction.RESOLVED, "fp-spend_anomaly-search")]
    alert = gone[0].alert
    assert alert.status == "resolved" and alert.resolved_at == T0 + timedelta(days=1)
    assert alerts.sync(session, [], T0 + timedelta(days=2)) == []  # resolved once

    back = alerts.sync(session, [finding(workload="search")], T0 + timedelta(days=3))
    assert [(c.action, c.reopened) for c in back] == [(ChangeAction.NEW, True)]
    assert back[0].alert.id == alert.id  # one alert per fingerprint
    assert back[0].alert.first_seen_at == T0 + timedelta(days=3)
    assert back[0].alert.status == "open" and back[0].alert.resolved_at is None


def test_only_evaluated_kinds_resolve_by_absence(session, registry):
    alerts.sync(session, [finding(kind="stale_data"), finding(kind="spend_anomaly")], T0)
    changes = alerts.sync(session, [], T0 + timedelta(hours=1), kinds=["spend_anomaly"])
    assert [c.alert.kind for c in changes] == ["spend_anomaly"]


def test_acknowledged_alert_stays_quiet_until_severity_rises(session, registry):
    registry.workload("search")
    alert = alerts.sync(session, [finding("warning", "search")], T0)[0].alert
    alerts.acknowledge(session, alert.id, "U0ANA0001", T0 + timedelta(minutes=5))
    assert alert.status == "acknowledged" and alert.acknowledged_by == "U0ANA0001"
    assert alerts.sync(session, [finding("warning", "search")], T0 + timedelta(hours=1)) == []
    rose = alerts.sync(session, [finding("critical", "search")], T0 + timedelta(hours=2))
    assert actions(rose) == [(ChangeAction.ESCALATED, alert.fingerprint)]
    assert alert.status == "open"  # what was acknowledged was the lesser condition

    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "alert.acknowledge"))
    assert event.actor == "U0ANA0001" and event.entity_key == str(alert.id)
    assert event.before["status"] == "open" and event.after["status"] == "acknowledged"


def test_snooze_is_silent_then_renotifies_when_it_ends(session, registry):
    registry.workload("search")
    alert = alerts.sync(session, [finding("warning", "search")], T0)[0].alert
    alerts.snooze(session, alert.id, "U0BOB0002", T0, days=7)
    assert alert.status == "snoozed" and alert.snoozed_until == T0 + timedelta(days=7)
    assert alerts.sync(session, [finding("warning", "search")], T0 + timedelta(days=6)) == []
    ended = alerts.sync(session, [finding("warning", "search")], T0 + timedelta(days=7, hours=1))
    assert actions(ended) == [(ChangeAction.SNOOZE_ENDED, alert.fingerprint)]
    assert alert.status == "open" and alert.snoozed_until is None
    assert alerts.sync(session, [finding("warning", "search")], T0 + timedelta(days=8)) == []
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "alert.snooze"))
    assert event.actor == "U0BOB0002" and event.after["status"] == "snoozed"


def test_snoozed_alert_that_clears_is_resolved_without_renotifying(session, registry):
    registry.workload("search")
    alert = alerts.sync(session, [finding("warning", "search")], T0)[0].alert
    alerts.snooze(session, alert.id, "U0BOB0002", T0)
    changes = alerts.sync(session, [], T0 + timedelta(days=10))
    assert actions(changes) == [(ChangeAction.RESOLVED, alert.fingerprint)]


def test_ack_and_snooze_refuse_clearly(session, registry):
    with pytest.raises(BadInput, match="no alert 999"):
        alerts.acknowledge(session, 999, "U1", T0)
    alert = alerts.sync(session, [finding()], T0)[0].alert
    alerts.sync(session, [], T0 + timedelta(hours=1))
    with pytest.raises(BadInput, match="already resolved"):
        alerts.snooze(session, alert.id, "U1", T0)
    with pytest.raises(BadInput, match="1 to 90 days"):
        alerts.snooze(session, alert.id, "U1", T0, days=0)


def test_duplicate_fingerprints_in_one_run_keep_the_most_severe(session, registry):
    changes = alerts.sync(
        session, [finding("warning", fp="same"), finding("critical", fp="same")], T0
    )
    assert len(changes) == 1 and changes[0].alert.severity == "critical"

"""Thresholds (defaults, organisation, environment, per workload) and the Finding contract."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from llmgov.governance.findings import Finding, Kind, fingerprint, format_money
from llmgov.governance.thresholds import Thresholds, for_workload, load_thresholds, parse_overrides
from llmgov.models.errors import BadInput
from llmgov.models.registry import OrganisationProfile

CONTRACT_KEYS = [
    "kind",
    "severity",
    "workload",
    "owner",
    "team",
    "amount",
    "currency",
    "message",
    "details",
    "fingerprint",
]


def test_precedence_defaults_then_organisation_then_environment(session):
    session.add(
        OrganisationProfile(
            id=1, extra={"thresholds": {"anomaly_z": 4, "critical_amount": "250.50"}}
        )
    )
    session.flush()
    loaded = load_thresholds(session, {"LLMGOV_THRESHOLD_ANOMALY_Z": "5", "OTHER": "x"})
    assert loaded.anomaly_z == 5.0  # the environment wins over the registry
    assert loaded.critical_amount == Decimal("250.50")  # from the registry, exact
    assert loaded.token_growth_pct == Thresholds().token_growth_pct  # default


def test_per_workload_overrides_sit_on_top():
    base = Thresholds(anomaly_z=4.0)
    mine = for_workload(base, "search", {"anomaly_z": 6, "post_min_severity": "critical"})
    assert (mine.anomaly_z, mine.post_min_severity) == (6.0, "critical")
    assert for_workload(base, "other", {}) is base


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"anomaly_zz": 3}, "unknown threshold 'anomaly_zz'; known thresholds: "),
        ({"anomaly_z": "high"}, "anomaly_z = 'high' is not a non-negative number"),
        ({"critical_amount": -5}, "critical_amount = -5 is not a non-negative amount"),
        ({"stake_window_days": 2.5}, "stake_window_days = 2.5 is not a non-negative whole"),
        ({"post_min_severity": "loud"}, "one of info, warning, critical"),
        ({"anomaly_z": True}, "anomaly_z = True"),
    ],
)
def test_bad_overrides_name_where_what_and_the_fix(overrides, message):
    with pytest.raises(BadInput, match="workload search thresholds: ") as raised:
        parse_overrides(overrides, "workload search thresholds")
    assert message in str(raised.value)


def test_per_source_staleness_accepts_a_mapping_or_env_text():
    assert parse_overrides({"stale_after_hours_by_source": "focus=200,cur2=10"}, "env") == {
        "stale_after_hours_by_source": {"focus": 200.0, "cur2": 10.0}
    }
    t = Thresholds().with_overrides({"stale_after_hours_by_source": {"prometheus": 2}}, "x")
    assert t.stale_after("prometheus") == 2.0 and t.stale_after("other") == t.stale_after_hours


def test_finding_json_follows_the_contract():
    finding = Finding(
        kind="budget_exceeded",
        severity="critical",
        workload="search",
        owner="U0ANA0001",
        team="search",
        amount=Decimal("210.456"),
        currency="USD",
        message="over budget",
        details={"day": date(2026, 11, 2), "budget": Decimal("4000"), "nan": float("nan")},
        fingerprint=fingerprint("budget_exceeded", "search", "2026-11"),
    )
    data = json.loads(json.dumps(finding.to_json()))
    assert list(data) == CONTRACT_KEYS
    assert data["amount"] == 210.46 and isinstance(data["amount"], float)
    assert data["details"] == {"day": "2026-11-02", "budget": 4000.0, "nan": None}


def test_fingerprints_are_stable_and_distinguish_periods():
    a = fingerprint("budget_exceeded", "search", "2026-11")
    assert a == fingerprint("budget_exceeded", "search", "2026-11")
    assert a != fingerprint("budget_exceeded", "search", "2026-12")
    assert a != fingerprint("budget_projected_overrun", "search", "2026-11")
    assert len(a) == 40


def test_unknown_kind_or_severity_is_refused():
    with pytest.raises(ValueError, match="unknown finding kind"):
        Finding("nope", "info", None, None, None, Decimal(0), "USD", "m")
    with pytest.raises(ValueError, match="unknown severity"):
        Finding(Kind.STALE_DATA.value, "loud", None, None, None, Decimal(0), "USD", "m")


def test_every_design_kind_exists():
    design = [
        "budget_exceeded",
        "budget_projected_overrun",
        "spend_anomaly",
        "retry_storm",
        "token_growth",
        "fan_out_growth",
        "unit_cost_drift",
        "idle_gpu",
        "unattributed_spend",
        "unowned_workload",
        "owner_inactive",
        "missing_budget",
        "missing_exit_strategy",
        "estimate_drift",
        "stale_data",
        "minute_retry_storm",
        "runaway",
    ]
    assert [k.value for k in Kind] == design


def test_money_wording():
    assert format_money(Decimal("4210.4"), "USD") == "$4,210"
    assert format_money(Decimal("12.5"), "EUR") == "€12.50"
    assert format_money(Decimal("-3"), "CHF") == "-3.00 CHF"

"""Each check with hand-built facts (SQLite, and PostgreSQL with TEST_DATABASE_URL)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from llmgov.governance.checks import evaluate
from llmgov.governance.ledger import budget_status
from llmgov.governance.thresholds import Thresholds
from llmgov.models.facts import Price, UpstreamFact

NOV_1 = date(2026, 11, 1)


def by_kind(findings, kind):
    return [f for f in findings if f.kind == kind]


def at(day: date, hour: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


# ---- budgets -----------------------------------------------------------------------------


def test_budget_exceeded_is_critical_with_the_overspend_at_stake(session, registry):
    owner = registry.person("U0ANA0001", "Ana")
    team = registry.team("search", "C0SEARCH01")
    w = registry.workload("search", owner=owner, team=team, budget_monthly=Decimal("1000"))
    registry.costs(w, date(2026, 10, 1), [60] * 50)  # Oct 1 .. Nov 19
    findings = evaluate(session, date(2026, 11, 19))
    [found] = by_kind(findings, "budget_exceeded")
    assert found.severity == "critical"
    assert found.amount == Decimal("140.00")  # 19 x 60 = 1,140 against 1,000
    assert (found.workload, found.owner, found.team) == ("search", "U0ANA0001", "search")
    assert found.message.startswith("search has spent $1,140 of its $1,000 November budget")
    assert found.details["month"] == "2026-11" and found.details["days_left"] == 11
    assert not by_kind(findings, "budget_projected_overrun")  # over already says it all
    # the fingerprint is per month: December's would be a new condition
    december = evaluate(session, date(2026, 11, 19))
    assert by_kind(december, "budget_exceeded")[0].fingerprint == found.fingerprint


def test_near_budget_on_track_is_at_risk_not_an_alert(session, registry):
    """87% spent, on track to end the month under budget: the one budget-status rule says
    `at_risk` (past budget_warning_ratio), which /llm-cost and the digest show; the checks
    raise a budget finding only for `exceeded` and `projected_overrun`."""
    w = registry.workload("search", budget_monthly=Decimal("1000"))
    registry.costs(w, date(2026, 9, 1), [30] * 90)  # through Nov 29, a 30-day month
    findings = evaluate(session, date(2026, 11, 29))
    assert by_kind(findings, "budget_exceeded") == []
    assert by_kind(findings, "budget_projected_overrun") == []
    limits = Thresholds()
    assert budget_status(Decimal(1000), Decimal(870), Decimal(900), Decimal(905), limits) == (
        "at_risk"
    )
    assert budget_status(Decimal(1000), Decimal(500), Decimal(900), Decimal(990), limits) == "ok"
    assert budget_status(None, Decimal(500), None, None, limits) == "no_budget"


def test_projected_overrun_is_critical_when_the_budget_runs_out_early(session, registry):
    w = registry.workload("search", budget_monthly=Decimal("1000"))
    registry.costs(w, date(2026, 9, 1), [50] * 71)  # through Nov 10
    findings = evaluate(session, date(2026, 11, 10))
    [found] = by_kind(findings, "budget_projected_overrun")
    assert found.details["exhausted_on"] == "2026-11-20"
    assert found.severity == "critical"  # 10 days before the month ends
    assert abs(found.amount - Decimal("500")) < Decimal("25")  # ~1,500 projected
    assert not by_kind(findings, "budget_exceeded")


# ---- the registry ------------------------------------------------------------------------


def test_registry_gaps(session, registry):
    ana = registry.person("U0ANA0001", "Ana")
    gone = registry.person("U0OLD0009", "Olga", active=False)
    bob = registry.person("U0BOB0002", "Bob")
    found_in_data = registry.workload("mystery", status="discovered", discovered_from="model=x")
    orphan = registry.workload("orphan")  # registered without an owner
    left = registry.workload("left", owner=gone, backup_owner=bob, budget_monthly=Decimal(500))
    nobudget = registry.workload("nobudget", owner=ana)
    registry.workload(
        "core", owner=ana, critical_path=True, exit_strategy=None, budget_monthly=Decimal(99999)
    )
    registry.workload(
        "lab", owner=ana, status="experiment", exit_strategy=None, budget_monthly=Decimal(10)
    )
    registry.workload("old", status="retired")
    registry.costs(found_in_data, date(2026, 10, 10), [50] * 30)  # 1,500 in the window
    registry.costs(orphan, date(2026, 10, 10), [1] * 30)
    registry.costs(left, date(2026, 10, 10), [10] * 30)
    registry.costs(nobudget, date(2026, 10, 10), [20] * 30)
    findings = evaluate(session, date(2026, 11, 8))

    unowned = {f.workload: f for f in by_kind(findings, "unowned_workload")}
    assert set(unowned) == {"mystery", "orphan"}
    assert unowned["mystery"].severity == "critical"  # 1,500 at stake >= 1,000
    assert unowned["mystery"].amount == Decimal("1500.00")
    assert "was discovered in the spend data" in unowned["mystery"].message
    assert unowned["orphan"].severity == "warning"

    [inactive] = by_kind(findings, "owner_inactive")
    assert inactive.workload == "left" and inactive.owner == "U0OLD0009"
    assert "the backup owner (Bob) should take it over" in inactive.message

    budgets = {f.workload: f for f in by_kind(findings, "missing_budget")}
    assert set(budgets) == {"orphan", "nobudget"}  # not the discovered one
    assert budgets["nobudget"].severity == "warning"  # 600 >= 500
    assert budgets["nobudget"].details["suggested_budget"] == Decimal(720)
    assert budgets["orphan"].severity == "info"

    exits = {f.workload: f.severity for f in by_kind(findings, "missing_exit_strategy")}
    assert exits == {"core": "warning"}  # experiments are not asked; critical path warns
    assert all(f.workload != "old" for f in findings)


# ---- unattributed spend and stale data ---------------------------------------------------


def test_unattributed_spend_share_and_top_sources(session, registry):
    w = registry.workload("search", budget_monthly=Decimal(99999))
    registry.costs(w, date(2026, 10, 10), [7] * 30)  # 210
    registry.costs(None, date(2026, 10, 10), [2] * 30, key="ce|tag=none|model=a")  # 60
    registry.costs(None, date(2026, 10, 10), [1] * 30, key="ce|tag=none|model=b")  # 30
    [found] = by_kind(evaluate(session, date(2026, 11, 8)), "unattributed_spend")
    assert found.amount == Decimal("90.00")
    assert found.severity == "critical"  # 30% >= 20%
    assert found.details["share"] == 0.3
    assert [s["series_key"] for s in found.details["top_sources"]] == [
        "ce|tag=none|model=a",
        "ce|tag=none|model=b",
    ]
    # what a reader sees: the dimensions, without the collector's name
    assert [s["label"] for s in found.details["top_sources"]] == [
        "tag=none · model=a",
        "tag=none · model=b",
    ]
    assert found.workload is None and found.owner is None


def test_stale_sources(session, registry):
    now = at(date(2026, 11, 10), 12)
    registry.source("bedrock_cloudwatch", now - timedelta(hours=30), scope="111/us-east-1")
    registry.source("prometheus", now - timedelta(hours=100))
    registry.source("cost_explorer", now - timedelta(hours=50))  # its limit is 72 h
    registry.source("focus", None, error="AccessDenied: s3:GetObject")
    registry.source("cur2", now + timedelta(hours=5))  # delivered after the moment asked
    findings = {f.details["source"]: f for f in by_kind(evaluate(session, now), "stale_data")}
    assert set(findings) == {"bedrock_cloudwatch", "prometheus", "focus"}
    assert findings["bedrock_cloudwatch"].severity == "warning"
    assert (
        "(111/us-east-1) has not delivered for 30 hours" in findings["bedrock_cloudwatch"].message
    )
    assert findings["prometheus"].severity == "critical"
    assert "has never delivered" in findings["focus"].message
    assert "AccessDenied" in findings["focus"].message


# ---- the core's detectors ----------------------------------------------------------------


def test_spend_anomaly_on_the_last_day(session, registry):
    w = registry.workload("search", budget_monthly=Decimal(99999))
    registry.costs(w, date(2026, 9, 1), [100] * 67 + [400])  # Nov 7 spikes
    [found] = by_kind(evaluate(session, date(2026, 11, 7)), "spend_anomaly")
    assert found.severity == "critical"  # 4x normal: excess 300 >= 2 x 100
    assert found.amount == Decimal("300.00")
    assert found.details["day"] == "on 2026-11-07"
    # the day after, spend is normal again: nothing to say
    registry.costs(w, date(2026, 11, 8), [100])
    assert not by_kind(evaluate(session, date(2026, 11, 8)), "spend_anomaly")


def test_per_workload_threshold_silences_a_noisy_workload(session, registry):
    w = registry.workload("search", budget_monthly=Decimal(99999), thresholds={"anomaly_z": 1e9})
    registry.costs(w, date(2026, 9, 1), [100] * 67 + [400])
    assert not by_kind(evaluate(session, date(2026, 11, 7)), "spend_anomaly")


def _hourly(registry, w, first: datetime, hours: int, **values):
    for h in range(hours):
        registry.usage(w, first + timedelta(hours=h), **values)
    registry.session.flush()


def test_retry_storm_in_the_latest_hour(session, registry):
    w = registry.workload("chat", budget_monthly=Decimal(99999))
    start = at(date(2026, 11, 2))
    _hourly(
        registry,
        w,
        start,
        8 * 24,
        invocations=100.0,
        client_errors=1.0,
        estimated_cost=Decimal("1.0"),
    )
    registry.usage(
        w,
        start + timedelta(hours=8 * 24),
        invocations=1000.0,
        client_errors=300.0,
        throttles=200.0,
        estimated_cost=Decimal("10.0"),
    )
    session.flush()
    findings = evaluate(session, start + timedelta(hours=8 * 24 + 1))
    [found] = by_kind(findings, "retry_storm")
    assert found.severity == "critical"
    assert found.details["ratio"] >= 3 and found.details["error_share"] >= 0.2
    assert "retry storm" in found.message


def test_token_growth_week_after_week(session, registry):
    w = registry.workload("chat", budget_monthly=Decimal(99999))
    first = date(2026, 10, 5)  # a Monday; four full weeks to Nov 1
    for week, tokens in enumerate((1000.0, 1100.0, 1210.0, 1331.0)):
        for day in range(7):
            registry.usage(
                w,
                at(first + timedelta(days=7 * week + day), 12),
                invocations=100.0,
                input_tokens=tokens * 100,
                output_tokens=0.0,
                estimated_cost=Decimal("100"),
            )
    registry.costs(w, date(2026, 9, 1), [100] * 62)
    [found] = by_kind(evaluate(session, date(2026, 11, 1)), "token_growth")
    assert round(found.details["growth_pct"]) == 33
    assert found.severity == "warning"
    assert 600 < found.amount < 800  # a quarter of ~3,000 a month


def test_idle_gpus(session, registry):
    w = registry.workload(
        "llama",
        platform="self_hosted",
        budget_monthly=Decimal(99999),
        gpu={"instance_type": "g6.xlarge", "count": 1},
    )
    session.add(
        Price(
            kind="gpu_hour",
            key="g6.xlarge",
            region="*",
            unit="per_hour",
            amount=Decimal("0.80"),
            currency="USD",
            source="test",
            as_of=date(2026, 1, 1),
        )
    )
    start = at(date(2026, 11, 1))
    for h in range(7 * 24):
        registry.gpu(w, start + timedelta(hours=h), utilisation=5.0 if h % 24 < 20 else 80.0)
    session.flush()
    [found] = by_kind(evaluate(session, date(2026, 11, 7)), "idle_gpu")
    assert found.details["idle_hours"] == 140
    assert found.severity == "warning"
    assert found.amount == Decimal(str(round(140 * 0.8 * 730 / 168, 2)))


def test_estimate_drift_against_the_bill(session, registry):
    w = registry.workload("chat", budget_monthly=Decimal(99999))
    first = date(2026, 10, 20)
    registry.costs(w, first, [100] * 14)
    for day in range(14):
        registry.usage(w, at(first + timedelta(days=day), 12), estimated_cost=Decimal("150"))
    session.flush()
    [found] = by_kind(evaluate(session, date(2026, 11, 2)), "estimate_drift")
    assert round(found.details["drift_pct"]) == 50
    assert found.amount == Decimal("1500.00")  # 50 a day, per month


def test_fan_out_growth(session, registry):
    w = registry.workload("agent", budget_monthly=Decimal(99999))
    first = date(2026, 10, 5)
    for day in range(28):
        calls = 200.0 if day < 21 else 400.0  # two calls per request, then four
        registry.usage(
            w, at(first + timedelta(days=day), 12), invocations=calls, estimated_cost=Decimal("50")
        )
        session.add(
            UpstreamFact(workload_id=w.id, hour=at(first + timedelta(days=day), 12), requests=100.0)
        )
    registry.costs(w, date(2026, 9, 1), [50] * 62)
    [found] = by_kind(evaluate(session, date(2026, 11, 1)), "fan_out_growth")
    assert round(found.details["growth_pct"]) == 100
    assert (found.details["before"], found.details["after"]) == (2.0, 4.0)


def test_unit_cost_drift(session, registry):
    w = registry.workload("chat", budget_monthly=Decimal(99999))
    first = date(2026, 10, 5)
    costs = [100] * 21 + [160] * 7
    registry.costs(w, first, costs)
    for day in range(28):
        registry.usage(w, at(first + timedelta(days=day), 12))
    session.flush()
    [found] = by_kind(evaluate(session, date(2026, 11, 1)), "unit_cost_drift")
    assert round(found.details["spend_change_pct"]) == 60
    assert round(found.details["usage_change_pct"]) == 0


def test_findings_json_is_the_design_contract(session, registry):
    w = registry.workload("search", budget_monthly=Decimal("100"))
    registry.costs(w, date(2026, 11, 1), [60, 60])
    data = json.loads(json.dumps([f.to_json() for f in evaluate(session, date(2026, 11, 2))]))
    assert data and all(
        list(item)
        == [
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
        for item in data
    )
    assert data[0]["kind"] == "budget_exceeded" and data[0]["amount"] == 20.0


def test_thresholds_argument_overrides(session, registry):
    w = registry.workload("search")
    registry.costs(w, date(2026, 10, 10), [20] * 30)
    strict = Thresholds(missing_budget_warning_amount=Decimal("10000"))
    [found] = by_kind(evaluate(session, date(2026, 11, 8), strict), "missing_budget")
    assert found.severity == "info"

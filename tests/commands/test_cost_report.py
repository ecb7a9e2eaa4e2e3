"""`/llm-cost` numbers, cross-checked against plain SQL sums and hand calculations."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from llmgov.commands.cost import (
    CostRequest,
    Scope,
    build_cost_report,
    end_of_day,
    parse_cost_text,
    report_to_json,
    resolve_period,
)
from llmgov.commands.parsing import ParseError
from llmgov.models.facts import CostFact
from llmgov.models.governance import Alert
from tests.commands.world import (
    AS_OF,
    BILLED_THROUGH,
    DRIFT,
    TOKENS_PER_DOLLAR,
    at,
    build_world,
    daily_cost,
)

CENT = Decimal("0.01")


def report(session, text_: str, caller: str | None = None, **kwargs):
    return build_cost_report(session, parse_cost_text(text_, today=AS_OF), caller=caller, **kwargs)


def sql_billed(session, ids: list[int] | None, start: date, end: date) -> Decimal:
    """Plain SQL: billed LLM cost of workloads `ids` (None: attributed or LLM) in [start, end]."""
    where = (
        "workload_id IS NOT NULL OR is_llm"
        if ids is None
        else (f"workload_id IN ({','.join(str(i) for i in ids)})")
    )
    value = session.execute(
        text(f"SELECT SUM(cost) FROM cost_facts WHERE ({where}) AND day >= :a AND day <= :b"),
        {"a": start.isoformat(), "b": end.isoformat()},
    ).scalar()
    return Decimal(str(value or 0))


def sql_estimated(session, ids: list[int] | None, start: date, end: date) -> Decimal:
    """Plain SQL: the token estimate of workloads `ids` on UTC days [start, end]."""
    day = (
        "date(hour)"
        if session.get_bind().dialect.name == "sqlite"
        else "CAST(hour AT TIME ZONE 'UTC' AS DATE)"
    )
    where = "TRUE" if ids is None else f"workload_id IN ({','.join(str(i) for i in ids)})"
    value = session.execute(
        text(
            f"SELECT SUM(estimated_cost) FROM usage_facts WHERE ({where}) "
            f"AND {day} >= :a AND {day} <= :b"
        ),
        {"a": start.isoformat(), "b": end.isoformat()},
    ).scalar()
    return Decimal(str(value or 0))


def close(a: Decimal, b: Decimal) -> bool:
    """Equal to the cent (SQLite sums REAL, PostgreSQL NUMERIC)."""
    return abs(Decimal(a) - Decimal(b)) < CENT


def test_team_totals_equal_plain_sql_sums(session, world):
    result = report(session, "team:search 30d")
    ids = [world.workloads["search-summaries"].id, world.workloads["search-rerank"].id]
    start, end = date(2026, 10, 22), AS_OF
    lag = BILLED_THROUGH + timedelta(days=1)
    billed = sql_billed(session, ids, start, end)
    estimated = sql_estimated(session, ids, lag, end)
    assert close(result.billed, billed)
    assert close(result.estimated, estimated)
    assert close(result.total, billed + estimated)
    for row in result.workloads:
        one = [row.workload.id]
        assert close(
            row.total, sql_billed(session, one, start, end) + sql_estimated(session, one, lag, end)
        )
        mtd = sql_billed(session, one, date(2026, 11, 1), end) + sql_estimated(
            session, one, lag, end
        )
        assert close(row.month_to_date, mtd)
    # ranked by spend
    assert [r.workload.slug for r in result.workloads] == ["search-summaries", "search-rerank"]


def test_all_includes_unattributed_llm_spend_but_never_other_cloud_spend(session, world):
    result = report(session, "all 30d")
    start = date(2026, 10, 22)
    lag = BILLED_THROUGH + timedelta(days=1)
    expected = sql_billed(session, None, start, AS_OF) + sql_estimated(session, None, lag, AS_OF)
    assert close(result.total, expected)
    # 5 a day of unattributed LLM spend, billed for Oct 22 .. Nov 18: 28 days
    assert result.unattributed == Decimal(140)
    assert close(
        sum((w.total for w in result.workloads), Decimal(0)) + result.unattributed, result.total
    )


def test_unattributed_is_shown_for_narrower_scopes_too(session, world):
    assert report(session, "team:support 30d").unattributed == Decimal(140)


def test_billing_lag_is_filled_with_estimates_and_their_drift_is_reported(session, world):
    result = report(session, "search-summaries 7d")
    billing = result.billing
    assert billing.billed_through == BILLED_THROUGH
    assert billing.estimated_days == 2
    by_hand = sum(
        (daily_cost("search-summaries", AS_OF - timedelta(days=i)) * DRIFT for i in (0, 1)),
        Decimal(0),
    )
    assert close(billing.estimated, by_hand)
    assert billing.drift_window == (BILLED_THROUGH - timedelta(days=6), BILLED_THROUGH)
    assert billing.drift_percent == pytest.approx(5.0, abs=1e-6)


def test_budget_exhaustion_date_matches_a_hand_walk_through_the_month(session, world):
    result = report(session, "search-summaries mtd")
    assert result.budget == Decimal(3000)
    running, crossed = Decimal(0), None
    day = date(2026, 11, 1)
    while day <= AS_OF:
        value = daily_cost("search-summaries", day)
        running += value if day <= BILLED_THROUGH else value * DRIFT
        if crossed is None and running >= 3000:
            crossed = day
        day += timedelta(days=1)
    assert close(result.month_to_date, running)
    assert result.budget_status == "exceeded"
    assert result.budget_exhausted_on == crossed
    projection = result.projection
    assert projection.low <= projection.point <= projection.high
    assert projection.point >= result.month_to_date


def test_a_workload_billed_but_not_yet_estimated_is_not_projected_from_zeros(session, world):
    # support-llama costs 60 a day, has no token estimates, and billing stops 2 days early:
    # its projection must stay 60 a day (not fall because the last 2 days read as zero).
    row = report(session, "support-llama mtd").workloads[0]
    assert row.projected_month_end.point == Decimal("1800.00")


def test_unit_economics_use_the_cost_of_the_days_the_metrics_cover(session):
    world = build_world(session, usage_days=14)
    result = report(session, "search-summaries 30d")
    unit = result.unit
    first = AS_OF - timedelta(days=13)
    assert unit.since == first
    cost = Decimal(0)
    tokens = 0.0
    day = first
    while day <= AS_OF:
        value = daily_cost("search-summaries", day)
        cost += value if day <= BILLED_THROUGH else value * DRIFT
        tokens += float(value) * TOKENS_PER_DOLLAR
        day += timedelta(days=1)
    assert close(unit.cost, cost)
    assert float(unit.per_1k_tokens) == pytest.approx(float(cost) / tokens * 1000, rel=1e-9)
    assert unit.tokens_per_request == pytest.approx(1000)
    assert world.workloads["search-summaries"].id  # the world was built


def test_change_effects_add_up_to_the_change(session, world):
    result = report(session, "team:search 30d")
    change = result.change
    assert change.current == result.total
    assert sum(e.amount for e in change.effects) == change.delta.quantize(CENT)
    effects = {e.name: e.amount for e in change.effects}
    # more tokens at the same price per token: the growth is volume, not price
    assert effects["volume"] > 0
    assert abs(effects.get("price_mix", Decimal(0))) < effects["volume"]
    assert change.movers[0][0] == "search-summaries"


@pytest.mark.parametrize(
    ("text_", "caller", "slugs"),
    [
        ("", "U0ANA0001", ["search-summaries"]),
        ("", "U0BO00002", ["search-summaries", "search-rerank"]),  # owner and backup
        ("@bo", None, ["search-summaries", "search-rerank"]),
        ("<@U0ANA0001|ana>", None, ["search-summaries"]),
        ("feature:ranking", None, ["search-rerank"]),
        ("customer:ACME", None, ["search-rerank"]),
        ("team:support", None, ["support-llama"]),
        ("all", None, ["search-summaries", "support-llama", "search-rerank", "orphan-batch"]),
    ],
)
def test_scopes_select_the_right_workloads(session, world, text_, caller, slugs):
    assert [r.workload.slug for r in report(session, text_, caller).workloads] == slugs


@pytest.mark.parametrize(
    ("text_", "message"),
    [
        ("nosuch-workload", "There is no workload `nosuch-workload`."),
        (
            "search-sumaries",
            "There is no workload `search-sumaries`. Did you mean `search-summaries`?",
        ),
        ("team:serch", "There is no team `serch`. Did you mean `team:search`?"),
        ("feature:rankng", "No workload has feature `rankng`. Did you mean `feature:ranking`?"),
        ("@zed", "No one called `@zed` is in the registry."),
    ],
)
def test_unknown_scopes_say_what_and_suggest(session, world, text_, message):
    with pytest.raises(ParseError) as caught:
        report(session, text_)
    assert caught.value.message == message
    assert caught.value.example.startswith("/llm-cost ")


def test_a_caller_without_workloads_gets_an_empty_report(session, world):
    result = report(session, "", "U0NOBODY01")
    assert result.workloads == () and result.total == 0 and result.projection is None


def test_open_findings_are_the_unresolved_alerts_of_the_scope(session, world):
    assert [f.kind for f in report(session, "search-summaries").findings] == [
        "budget_projected_overrun"
    ]
    everything = report(session, "all")
    assert everything.findings_total == 2  # the resolved one is not open
    assert {f.kind for f in everything.findings} == {
        "budget_projected_overrun",
        "unattributed_spend",
    }
    assert everything.workloads[0].open_alerts == 1


def test_gaps_come_from_the_registry_rule(session, world):
    gaps = {info.slug: [g.value for g in found] for info, found in report(session, "all").gaps}
    assert gaps == {
        "support-llama": ["owner_inactive"],
        "search-rerank": ["missing_budget", "missing_exit_strategy"],
        "orphan-batch": ["discovered", "unowned"],
    }


def test_scope_budget_only_when_every_spending_workload_has_one(session, world):
    assert report(session, "team:search").budget is None
    assert report(session, "team:support").budget == Decimal(2000)


def test_as_of_uses_only_the_facts_known_then(session, world):
    as_of = date(2026, 11, 10)
    # a late restatement of Nov 5, collected on Nov 15: unknown on Nov 10
    session.add(
        CostFact(
            source="cur2",
            series_key="late",
            day=date(2026, 11, 5),
            cost=Decimal(1000),
            workload_id=world.workloads["search-rerank"].id,
            collected_at=at(date(2026, 11, 15)),
        )
    )
    session.commit()
    period = resolve_period("mtd", as_of)
    then = build_cost_report(
        session,
        CostRequest(Scope("workload", "search-rerank"), period, False, as_of, end_of_day(as_of)),
    )
    now = build_cost_report(
        session, CostRequest(Scope("workload", "search-rerank"), period, False, as_of)
    )
    # known by the end of Nov 10: billed through Nov 8 (facts land 2 days late), 50 a day,
    # plus the token estimates of Nov 9 and 10 (collected within the hour)
    assert then.billing.billed_through == date(2026, 11, 8)
    estimated = sql_estimated(
        session, [world.workloads["search-rerank"].id], date(2026, 11, 9), as_of
    )
    late_hour = Decimal(50) * DRIFT / 24  # 23:00 on Nov 10 is collected at midnight: unknown
    assert close(then.total, Decimal(50 * 8) + estimated - late_hour.quantize(Decimal("1e-8")))
    assert now.total == Decimal(50 * 10 + 1000)


def test_json_contract(session, world):
    data = report_to_json(report(session, "team:search 30d", detail_limit=None))
    for key in ("scope", "period", "currency", "total", "unattributed", "workloads"):
        assert key in data
    assert data["scope"] == "team:search"
    assert data["period"] == {"label": "30d", "start": "2026-10-22", "end": "2026-11-20"}
    row = data["workloads"][0]
    for key in (
        "slug",
        "owner",
        "total",
        "month_to_date",
        "projected_month_end",
        "budget",
        "budget_exhausted_on",
    ):
        assert key in row
    assert set(row["projected_month_end"]) == {"point", "low", "high"}
    assert row["owner"] == "U0ANA0001"
    money = [data["total"], data["unattributed"], row["total"], row["month_to_date"]]
    assert all(isinstance(m, float) and round(m, 2) == m for m in money)


def test_detail_is_limited_but_totals_stay_exact(session, world):
    full = report(session, "all", detail_limit=None)
    top = report(session, "all", detail_limit=1)
    assert top.total == full.total
    assert [r.projected_month_end is not None for r in top.workloads] == [True, False, False, False]
    assert top.unit is None and full.workloads[0].unit is not None


def test_a_report_in_the_past_month_of_a_new_install_has_no_bill(session):
    world = build_world(session)
    result = build_cost_report(
        session,
        CostRequest(
            Scope("workload", "search-summaries"),
            resolve_period("7d", AS_OF),
            False,
            AS_OF,
            datetime(2026, 1, 1, tzinfo=UTC),  # nothing was known yet
        ),
    )
    assert result.total == 0 and result.billing.billed_through is None
    assert world.workloads


def test_alerts_as_of(session, world):
    session.add(
        Alert(
            fingerprint="late",
            kind="retry_storm",
            severity="critical",
            workload_id=world.workloads["search-summaries"].id,
            message="storm",
            first_seen_at=at(AS_OF + timedelta(days=1)),
        )
    )
    session.commit()
    period = resolve_period("7d", AS_OF)
    then = build_cost_report(
        session,
        CostRequest(Scope("workload", "search-summaries"), period, False, AS_OF, end_of_day(AS_OF)),
    )
    assert [f.kind for f in then.findings] == ["budget_projected_overrun"]


def test_all_in_slack_splits_the_previous_period_only_for_the_detail(session, world):
    exact = report(session, "all 30d", detail_limit=None)
    sampled = report(session, "all 30d", detail_limit=2)
    assert sampled.total == exact.total
    assert sampled.change.previous == exact.change.previous
    assert sampled.change.delta == exact.change.delta
    assert [r.previous for r in sampled.workloads[2:]] == [None, None]
    assert [r.previous for r in sampled.workloads[:2]] == [r.previous for r in exact.workloads[:2]]
    assert sampled.change.movers_among == 2 and exact.change.movers_among is None
    assert sum(e.amount for e in sampled.change.effects) == sampled.change.delta.quantize(CENT)

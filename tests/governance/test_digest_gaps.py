"""The weekly digest and the gap review as data, and their jobs in bot.notify."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from llmgov.bot.notify import send_digests, send_gap_review
from llmgov.bot.settings import Settings
from llmgov.governance import alerts
from llmgov.governance.digest import build_digests, weeks_before
from llmgov.governance.findings import Finding
from llmgov.governance.gap_review import build_gap_review, record_published
from llmgov.models.errors import BadInput
from llmgov.models.facts import Price
from llmgov.models.governance import DecisionRecord, OutboxMessage

MONDAY = date(2026, 11, 9)
LAST_WEEK = (date(2026, 11, 2), date(2026, 11, 8))


def at(day: date, hour: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def test_weeks_are_monday_to_sunday():
    assert weeks_before(date(2026, 11, 8)) == (
        (date(2026, 10, 26), date(2026, 11, 1)),
        (date(2026, 10, 19), date(2026, 10, 25)),
    )
    assert weeks_before(MONDAY)[0] == LAST_WEEK


@pytest.fixture
def owners(session, registry):
    ana = registry.person("U0ANA0001", "Ana", tz="Europe/London")
    bob = registry.person("U0BOB0002", "Bob", tz="Asia/Tokyo")
    gone = registry.person("U0OLD0009", "Olga", active=False)
    search = registry.workload("search", owner=ana, budget_monthly=Decimal(1000))
    llama = registry.workload(
        "llama",
        owner=ana,
        platform="self_hosted",
        exit_strategy=None,
        gpu={"instance_type": "g6.xlarge", "count": 1},
    )
    registry.workload("helpdesk", owner=bob, budget_monthly=Decimal(100))
    registry.workload("legacy", owner=gone)
    # search: 50 a day with 100 calls, then 80 a day with 160 calls last week (volume)
    first = date(2026, 10, 1)
    for offset in range(39):
        day = first + timedelta(days=offset)
        busy = day >= LAST_WEEK[0]
        registry.daily_cost(search, day, 80 if busy else 50)
        registry.usage(
            search,
            at(day, 12),
            invocations=160.0 if busy else 100.0,
            input_tokens=16000.0 if busy else 10000.0,
            output_tokens=0.0,
        )
    session.add(
        Price(
            kind="gpu_hour",
            key="g6.xlarge",
            region="*",
            unit="per_hour",
            amount=Decimal("1.00"),
            currency="USD",
            source="test",
            as_of=date(2026, 1, 1),
        )
    )
    for hour in range(7 * 24):  # last week: idle 10 hours a day
        registry.gpu(
            llama,
            at(LAST_WEEK[0]) + timedelta(hours=hour),
            utilisation=5.0 if hour % 24 < 10 else 70.0,
        )
    session.add(
        DecisionRecord(
            workload_id=llama.id,
            decided_by="U0ANA0001",
            decided_at=at(date(2026, 10, 20)),
            recommendation="self_hosted",
            note="steady volume",
        )
    )
    finding = Finding(
        "missing_exit_strategy",
        "info",
        "llama",
        "U0ANA0001",
        None,
        Decimal(0),
        "USD",
        "llama has no exit strategy",
        {},
        "fp-exit",
    )
    alerts.sync(session, [finding], at(MONDAY))
    session.flush()
    return {"search": search, "llama": llama}


def test_digest_data_for_each_active_owner(session, owners):
    digests = {d.owner: d for d in build_digests(session, at(MONDAY, 9))}
    assert set(digests) == {"U0ANA0001", "U0BOB0002"}  # not the owner who left
    ana = digests["U0ANA0001"]
    assert (ana.week, ana.tz, ana.as_of) == (LAST_WEEK, "Europe/London", date(2026, 11, 8))
    search, llama = ana.workloads  # most money first
    assert search.slug == "search"
    assert (search.last_week, search.week_before) == (Decimal("560.00"), Decimal("350.00"))
    assert round(search.change_pct) == 60
    assert search.driver.effect == "volume" and search.driver.change == Decimal("210.00")
    assert search.month_to_date == Decimal("610.00")  # Nov 1..8: 50 + 7 x 80
    assert search.budget == Decimal(1000) and search.exhausted_on is not None
    assert not search.missing_budget and not search.missing_exit_strategy
    assert llama.idle_gpu_cost == Decimal("70.00")  # 10 idle hours a day x 7 x $1
    assert llama.missing_budget and llama.missing_exit_strategy
    assert [f.kind for f in llama.open_findings] == ["missing_exit_strategy"]
    assert [(d.recommendation, d.note) for d in llama.decisions] == [
        ("self_hosted", "steady volume")
    ]
    assert ana.chart is not None and len(ana.chart.days) == 28 and ana.chart.budget is None


def test_digest_for_one_owner_and_clear_refusals(session, owners):
    [bob] = build_digests(session, at(MONDAY, 9), owner="U0BOB0002")
    assert [w.slug for w in bob.workloads] == ["helpdesk"]
    with pytest.raises(BadInput, match="U0NOBODY1 is not a known owner"):
        build_digests(session, at(MONDAY, 9), owner="U0NOBODY1")
    with pytest.raises(BadInput, match="owns no active workloads"):
        build_digests(session, at(MONDAY, 9), owner="U0OLD0009")
    assert build_digests(session, at(MONDAY, 9), owners=[]) == []


def test_send_digests_once_a_week_in_each_owners_calendar(session_factory, session, owners):
    session.commit()
    settings = Settings()
    dry = send_digests(session_factory, settings, at(MONDAY, 9), dry_run=True)
    assert {m.key for m in dry.messages} == {  # Bob spent nothing: no chart to show
        "digest:U0ANA0001:2026-W46",
        "digest:U0ANA0001:2026-W46:chart",
        "digest:U0BOB0002:2026-W46",
    }
    with session_factory() as check:
        assert check.scalar(select(func.count()).select_from(OutboxMessage)) == 0

    # Sunday 20:00 UTC: already Monday in Tokyo (a new ISO week there), not in London.
    sunday = at(date(2026, 11, 15), 20)
    first = send_digests(session_factory, settings, sunday)
    assert {m.key for m in first.messages if not m.key.endswith(":chart")} == {
        "digest:U0ANA0001:2026-W46",
        "digest:U0BOB0002:2026-W47",
    }
    again = send_digests(session_factory, settings, sunday + timedelta(hours=1))
    assert again.messages == [] and sorted(again.already_sent) == ["U0ANA0001", "U0BOB0002"]
    with session_factory() as check:
        rows = check.scalars(select(OutboxMessage.method)).all()
        assert sorted(rows) == ["chat.postMessage"] * 2 + ["files.upload_v2"]


def test_gap_review_ranks_by_money_with_unattributed_and_hybrids(session, registry):
    ana = registry.person("U0ANA0001", "Ana")
    gone = registry.person("U0OLD0009", "Olga", active=False)
    owned = registry.workload("owned", owner=ana, budget_monthly=Decimal(10), feature="chat")
    left = registry.workload("left", owner=gone, budget_monthly=Decimal(10))
    found = registry.workload(
        "found", status="discovered", discovered_from="model=x", exit_strategy=None
    )
    gpu_side = registry.workload(
        "chat-gpu", owner=ana, platform="self_hosted", budget_monthly=Decimal(10), feature="chat"
    )
    decided = registry.workload(
        "summ-gpu",
        owner=ana,
        platform="self_hosted",
        budget_monthly=Decimal(10),
        feature="summaries",
    )
    registry.workload("summ", owner=ana, budget_monthly=Decimal(10), feature="summaries")
    session.add(
        DecisionRecord(
            workload_id=decided.id,
            decided_by="U0ANA0001",
            recommendation="hybrid",
            decided_at=at(date(2026, 10, 1)),
        )
    )
    first = date(2026, 10, 10)
    registry.costs(owned, first, [10] * 30)  # 300
    registry.costs(left, first, [20] * 30)  # 600
    registry.costs(found, first, [30] * 30)  # 900
    registry.costs(gpu_side, first, [5] * 30)  # 150
    registry.costs(None, first, [4] * 30, key="ce|model=claude|acct=1")  # 120
    registry.costs(None, first, [1] * 30, key="ce|model=titan|acct=2")  # 30

    review = build_gap_review(session, date(2026, 11, 8))
    assert [(r.kind, r.workload or r.detail["series_key"], r.amount) for r in review.rows] == [
        ("discovered", "found", Decimal("900.00")),
        ("owner_inactive", "left", Decimal("600.00")),
        ("hybrid_without_decision", "owned", Decimal("450.00")),
        ("unattributed", "ce|model=claude|acct=1", Decimal("120.00")),
        ("unattributed", "ce|model=titan|acct=2", Decimal("30.00")),
    ]
    assert review.rows[3].detail["label"] == "model=claude · acct=1"
    hybrid = review.rows[2]
    assert hybrid.detail == {"group": "feature:chat", "members": ["owned", "chat-gpu"]}
    assert review.rows[0].gaps == ("discovered", "unowned")
    assert review.rows[0].claimable and review.rows[1].claimable and not hybrid.claimable
    # last week: owned 70 + chat-gpu 35 of 70 + 140 + 210 + 35 + 35 unattributed
    assert review.week_spend == Decimal("490.00")
    assert review.owned_week_spend == Decimal("105.00")
    assert review.owned_share == pytest.approx(105 / 490)
    assert review.previous_share is None and review.trend is None
    assert review.unattributed_total == Decimal("150.00")

    record_published(session, review)
    registry.costs(owned, date(2026, 11, 9), [10] * 7)
    registry.costs(left, date(2026, 11, 9), [20] * 7)
    later = build_gap_review(session, date(2026, 11, 15))
    assert later.previous_as_of == date(2026, 11, 8)
    assert later.trend == round((later.owned_share - review.owned_share) * 100, 1)
    # a backtest before that review does not see it
    assert build_gap_review(session, date(2026, 11, 1)).previous_share is None


def test_send_gap_review_needs_the_governance_channel(session_factory, session, registry):
    registry.workload("found", status="discovered")
    session.commit()
    with pytest.raises(BadInput, match="set LLMGOV_CHANNEL"):
        send_gap_review(session_factory, Settings(), at(MONDAY, 9))
    dry = send_gap_review(session_factory, Settings(), at(MONDAY, 9), dry_run=True)
    assert dry.messages[0].channel == "(LLMGOV_CHANNEL)"
    sent = send_gap_review(session_factory, Settings(governance_channel="C0GOV0001"), at(MONDAY, 9))
    assert [m.key for m in sent.messages] == ["gaps:2026-W46"]
    assert send_gap_review(
        session_factory, Settings(governance_channel="C0GOV0001"), at(MONDAY, 15)
    ).already_sent

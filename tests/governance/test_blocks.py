"""Alert, digest and gap-review Block Kit: routing, escaping, buttons, limits, golden text."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from llmgov.bot.blocks.alerts import (
    ACK_ACTION_ID,
    ASSIGN_ACTION_ID,
    CLAIM_ACTION_ID,
    SHOW_COST_ACTION_ID,
    SNOOZE_ACTION_ID,
    alert_message,
    alert_reply,
    alert_view,
    assign_modal,
)
from llmgov.bot.blocks.common import blocks_to_text, message_problems
from llmgov.bot.blocks.digest import digest_chart, digest_message
from llmgov.bot.blocks.gaps import MAX_ROWS, gap_review_message
from llmgov.governance.digest import DigestChart, Driver, OpenFinding, OwnerDigest, WorkloadDigest
from llmgov.governance.gap_review import GapReview, GapRow
from llmgov.models.governance import Alert
from llmgov.models.registry import Person, Team, Workload


def make_alert(**fields) -> Alert:
    values = dict(
        id=7,
        fingerprint="fp",
        kind="budget_exceeded",
        severity="critical",
        status="open",
        amount=Decimal("210.5"),
        currency="USD",
        message="search spent $4,210 of its $4,000 budget <!channel>",
        details={
            "month_to_date": 4210,
            "budget": 4000,
            "projected_month_end": 5000,
            "driver": {"effect": "intensity", "amount": 300.0},
        },
        first_seen_at=datetime(2026, 11, 3, tzinfo=UTC),
        last_seen_at=datetime(2026, 11, 21, tzinfo=UTC),
    )
    values.update(fields)
    return Alert(**values)


def owned_workload(active=True, backup=None, team_channel=None) -> Workload:
    team = Team(slug="search", name="Search & Ranking", channel_id=team_channel)
    owner = Person(slack_id="U0ANA0001", name="Ana", active=active)
    return Workload(slug="search", team=team, owner=owner, backup_owner=backup)


def action_ids(message) -> list[str]:
    return [
        e["action_id"]
        for b in message.block_dicts()
        if b["type"] == "actions"
        for e in b["elements"]
    ]


def test_alert_mentions_the_owner_and_escapes_user_text():
    message = alert_message(alert_view(make_alert(), owned_workload()))
    dicts = message.block_dicts()
    assert dicts[0]["text"]["text"] == (
        ":rotating_light: *Budget exceeded* · `search` · critical\n"
        "<@U0ANA0001>: search spent $4,210 of its $4,000 budget &lt;!channel&gt;"
    )
    fields = [f["text"] for f in dicts[1]["fields"]]
    assert fields == [
        "*Money at stake*\n$210.50",
        "*Owner*\n<@U0ANA0001>",
        "*Team*\nSearch &amp; Ranking",
        "*Status*\nOpen",
    ]
    assert (
        "Likely driver: *more tokens per request* (+$300 week on week)."
        in (dicts[2]["elements"][0]["text"])
    )
    assert "/llm-owner budget search AMOUNT" in dicts[3]["text"]["text"]
    assert action_ids(message) == [ACK_ACTION_ID, SNOOZE_ACTION_ID, SHOW_COST_ACTION_ID]
    assert all(e["value"] == "7" for b in dicts if b["type"] == "actions" for e in b["elements"])
    assert message.text.startswith("[critical] Budget exceeded · search: <@U0ANA0001>: ")
    assert "<!channel>" not in message.text
    assert message_problems(message.blocks, message.text) == []


def test_owner_left_routes_to_the_active_backup_and_offers_claim():
    backup = Person(slack_id="U0BOB0002", name="Bob", active=True)
    view = alert_view(make_alert(kind="owner_inactive"), owned_workload(False, backup))
    assert view.target == "<@U0BOB0002>"
    assert view.owner_label == "Ana (left); backup <@U0BOB0002>"
    message = alert_message(view)
    assert CLAIM_ACTION_ID in action_ids(message) and ASSIGN_ACTION_ID in action_ids(message)
    claim = next(
        e
        for b in message.block_dicts()
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == CLAIM_ACTION_ID
    )
    assert claim["value"] == "search"


def test_without_owner_the_team_then_unowned_is_named():
    team_only = Workload(slug="x", team=Team(slug="t", name="Team T"), owner=None)
    view = alert_view(make_alert(kind="unowned_workload"), team_only)
    assert view.target == "the *Team T* team" and view.offer_claim
    nobody = alert_view(make_alert(kind="unowned_workload"), Workload(slug="x"))
    assert nobody.target == "*Unowned*"
    assert "*Unowned*: " in alert_message(nobody).block_dicts()[0]["text"]["text"]
    global_view = alert_view(make_alert(kind="stale_data", details={"source": "ce"}), None)
    assert global_view.target == "Governance"
    assert action_ids(alert_message(global_view)) == [ACK_ACTION_ID, SNOOZE_ACTION_ID]


def test_states_change_the_buttons_and_the_status():
    acked = alert_view(
        make_alert(status="acknowledged", acknowledged_by="U0BOB0002"), owned_workload()
    )
    message = alert_message(acked)
    assert action_ids(message) == [SNOOZE_ACTION_ID, SHOW_COST_ACTION_ID]
    assert "Acknowledged by <@U0BOB0002>" in blocks_to_text(message.blocks).replace(
        "@U0BOB0002", "<@U0BOB0002>"
    )
    resolved = alert_view(
        make_alert(status="resolved", resolved_at=datetime(2026, 12, 1, 6, tzinfo=UTC)),
        owned_workload(),
    )
    message = alert_message(resolved)
    text = message.block_dicts()[0]["text"]["text"]
    assert text.startswith(":white_check_mark: *Resolved: Budget exceeded*")
    assert "~search spent" in text  # struck through, nobody mentioned again
    assert "<@" not in text
    assert action_ids(message) == [SHOW_COST_ACTION_ID]
    assert message.text.startswith("[resolved]")


def test_thread_reply_renotifies_the_owner():
    view = alert_view(make_alert(), owned_workload())
    reply = alert_reply(view, "escalated", "warning")
    assert reply.text.startswith(
        ":rotating_light: <@U0ANA0001>: this is now *critical* (was warning)."
    )
    snoozed = alert_reply(view, "snooze_ended", None)
    assert "the snooze has ended and this still holds" in snoozed.text


def test_assign_modal_carries_the_slug():
    modal = assign_modal("search", {"slug": "search", "response_url": "http://x"})
    assert modal["callback_id"] == "workload_assign_modal"
    assert '"slug": "search"' in modal["private_metadata"]
    assert modal["blocks"][1]["element"]["type"] == "users_select"


def _workload_digest(slug="search", **fields) -> WorkloadDigest:
    values = dict(
        slug=slug,
        name="Search <b>",
        platform="bedrock",
        team="search",
        currency="USD",
        last_week=Decimal("700"),
        week_before=Decimal("500"),
        month_to_date=Decimal("1800"),
        projected_month_end=Decimal("4200"),
        projected_low=Decimal("3900"),
        projected_high=Decimal("4500"),
        budget=Decimal("4000"),
        exhausted_on=date(2026, 11, 28),
        driver=Driver("volume", Decimal("150"), Decimal("200")),
        open_findings=(
            OpenFinding(
                3, "budget_projected_overrun", "warning", "open", "projected over", Decimal("200")
            ),
        ),
        idle_gpu_cost=None,
        missing_budget=False,
        missing_exit_strategy=True,
        decisions=(),
    )
    values.update(fields)
    return WorkloadDigest(**values)


def _digest(workloads) -> OwnerDigest:
    days = tuple(date(2026, 10, 12 + i) if i < 20 else date(2026, 11, i - 19) for i in range(28))
    month = tuple(date(2026, 11, d) for d in range(1, 31))
    return OwnerDigest(
        owner="U0ANA0001",
        owner_name="Ana",
        as_of=date(2026, 11, 8),
        week=(date(2026, 11, 2), date(2026, 11, 8)),
        previous_week=(date(2026, 10, 26), date(2026, 11, 1)),
        currency="USD",
        workloads=tuple(workloads),
        chart=DigestChart(
            days=days,
            daily=tuple(100.0 for _ in days),
            estimated=(False,) * 26 + (True,) * 2,
            month_days=month,
            month_actual=tuple(100.0 * d if d <= 8 else None for d in range(1, 31)),
            projection=tuple(None if d <= 8 else 100.0 * d for d in range(1, 31)),
            projection_low=tuple(None if d <= 8 else 90.0 * d for d in range(1, 31)),
            projection_high=tuple(None if d <= 8 else 110.0 * d for d in range(1, 31)),
            budget=4000.0,
        ),
    )


def test_digest_message_reads_like_a_person_wrote_it():
    message = digest_message(_digest([_workload_digest()]))
    text = blocks_to_text(message.blocks)
    assert "Your LLM workloads, week of 2 Nov–8 Nov 2026" in text
    assert (
        "@U0ANA0001, last week your 1 workload spent $700, +40% against the week before ($500). 1 open finding below."
        in text
    )
    assert "search · Search <b> · search · bedrock" in text  # escaped in mrkdwn, shown plain
    assert (
        "Last week $700, +40% against the week before ($500); mostly more requests (+$150)." in text
    )
    assert (
        "Month to date $1,800, projected $4,200 ($3,900–$4,500) against a $4,000 budget: runs out on 28 Nov."
        in text
    )
    assert ":warning: No exit strategy recorded." in text
    assert "Budget projected to run out: projected over" in text
    assert "&lt;b&gt;" in message.block_dicts()[3]["text"]["text"]
    assert message_problems(message.blocks, message.text) == []


def test_digest_with_many_workloads_stays_within_fifty_blocks():
    many = [_workload_digest(f"w{i}") for i in range(80)]
    message = digest_message(_digest(many))
    assert len(message.blocks) <= 50
    assert "…and 36 more." in blocks_to_text(message.blocks)


def test_digest_chart_is_a_png():
    png = digest_chart(_digest([_workload_digest()]))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_digest_chart_drawn_by_the_chart_worker_is_the_same_png():
    from llmgov.bot.chart_worker import ChartWorker

    digest = _digest([_workload_digest()])
    worker = ChartWorker()
    try:
        assert digest_chart(digest, charts=worker) == digest_chart(digest)
        assert worker.drawn == 1
    finally:
        worker.shutdown()


def _review(rows, share=0.8, previous=0.75) -> GapReview:
    return GapReview(
        as_of=date(2026, 11, 8),
        window_days=30,
        currency="USD",
        week_spend=Decimal("1000"),
        owned_week_spend=Decimal(str(1000 * share)),
        previous_share=previous,
        previous_as_of=date(2026, 11, 1) if previous else None,
        rows=tuple(rows),
        unattributed_total=Decimal("120"),
    )


def test_gap_review_headline_rows_and_buttons():
    rows = [
        GapRow(
            "owner_inactive",
            Decimal("900"),
            "USD",
            workload="search",
            team="search",
            platform="bedrock",
            owner="U0ANA0001",
            owner_name="Ana",
            owner_active=False,
            gaps=("owner_inactive", "missing_budget"),
        ),
        GapRow(
            "unattributed",
            Decimal("120"),
            "USD",
            detail={
                "source": "cost_explorer",
                "series_key": "ce|111122223333|<none>",
                "label": "account 111122223333 · <none>",
            },
        ),
        GapRow(
            "missing_exit_strategy",
            Decimal("50"),
            "USD",
            workload="chat",
            team="support",
            platform="self_hosted",
            owner="U0BOB0002",
            owner_name="Bob",
            owner_active=True,
            gaps=("missing_exit_strategy",),
        ),
    ]
    message = gap_review_message(_review(rows))
    text = blocks_to_text(message.blocks)
    assert (
        "80% of last week's LLM spend ($1,000) has an active owner (+5.0 points since 1 Nov)."
        in text
    )
    assert "$1,070 of spend in the last 30 days sits behind 3 gaps, largest first." in text
    assert (
        "1. `search` · $900 in 30 days · owner has left (also no budget)\nsearch · bedrock · owner Ana (left)"
        in text
    )
    assert "owner Ana (left)" in text
    assert "2. Unattributed · $120 · `account 111122223333 · <none>` (cost_explorer)" in text
    assert "owner @U0BOB0002" in text
    buttons = [b for b in message.block_dicts() if b["type"] == "actions"]
    assert len(buttons) == 1  # only the row without an active owner
    assert [e["action_id"] for e in buttons[0]["elements"]] == [CLAIM_ACTION_ID, ASSIGN_ACTION_ID]
    assert buttons[0]["elements"][0]["value"] == "search"


def test_gap_review_first_time_and_many_rows():
    rows = [
        GapRow(
            "unowned",
            Decimal(100 - i),
            "USD",
            workload=f"w{i}",
            platform="bedrock",
            gaps=("unowned",),
        )
        for i in range(40)
    ]
    message = gap_review_message(_review(rows, previous=None))
    text = blocks_to_text(message.blocks)
    assert "(first review: no trend yet)" in text
    assert f"…and {40 - MAX_ROWS} more." in text
    assert len(message.blocks) <= 50
    assert message_problems(message.blocks, message.text) == []


def test_every_kind_renders_even_without_details():
    from llmgov.governance.findings import Kind

    for kind in Kind:
        message = alert_message(
            alert_view(make_alert(kind=kind.value, details={}), owned_workload())
        )
        text = blocks_to_text(message.blocks)
        assert "None" not in text and "Undefined" not in text, kind
        assert message_problems(message.blocks, message.text) == []

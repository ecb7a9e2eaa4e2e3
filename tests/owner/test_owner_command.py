"""`/llm-owner` end to end below Slack: text → answer, against the real database."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from llmgov.bot.cli import main
from llmgov.commands import owner
from llmgov.governance.decisions import record_decision
from llmgov.governance.registry_view import Gap, PersonView
from llmgov.models.registry import Person, Workload
from tests.owner.factories import (
    ADMIN,
    ADMINS,
    BACKUP,
    LEFT,
    MEMBER,
    NEWBIE,
    OWNER,
    STRANGER,
    audit_events,
    build_registry,
    count,
    workload,
)


def ask(session_factory, text, actor=STRANGER):
    return owner.answer(session_factory, text, actor, ADMINS)


def slugs(answer):
    return [row.slug for row in answer.rows]


def test_list_filters(session, session_factory):
    r = build_registry(session)
    everything = ask(session_factory, "list")
    assert isinstance(everything, owner.ListAnswer)
    # by team, then slug; workloads without a team last
    assert slugs(everything) == [r.orphaned, r.unowned, r.members, r.owned, r.discovered]
    assert slugs(ask(session_factory, "list team:search")) == [
        r.orphaned,
        r.unowned,
        r.members,
        r.owned,
    ]
    assert slugs(ask(session_factory, f"list <@{BACKUP}|ben>")) == [r.owned]
    assert slugs(ask(session_factory, "list mine", actor=MEMBER)) == [r.members]
    nobody = ask(session_factory, f"list <@{NEWBIE}>")
    assert nobody.rows == () and "owns no workloads" in nobody.empty_hint

    ask(session_factory, f"retire {r.unowned}", actor=ADMIN)
    assert r.unowned not in slugs(ask(session_factory, "list"))
    assert r.unowned in slugs(ask(session_factory, "list all"))


def test_list_unknown_team_names_known_teams(session, session_factory):
    build_registry(session)
    answer = ask(session_factory, "list team:serch")
    assert isinstance(answer, owner.ErrorAnswer)
    assert answer.message == "unknown team 'serch'; teams: search"
    assert answer.example == "/llm-owner list team:search"


def test_rows_carry_owner_and_gaps(session, session_factory):
    r = build_registry(session)
    rows = {row.slug: row for row in ask(session_factory, "list").rows}
    assert rows[r.owned].owner == PersonView(OWNER, None, "Olivia Owner", True)
    assert rows[r.owned].gaps == ()
    assert rows[r.unowned].gaps == (Gap.UNOWNED, Gap.MISSING_BUDGET, Gap.MISSING_EXIT_STRATEGY)
    assert rows[r.orphaned].gaps[0] == Gap.OWNER_INACTIVE
    assert rows[r.discovered].gaps[:2] == (Gap.DISCOVERED, Gap.UNOWNED)


def test_gaps_worst_first(session, session_factory):
    r = build_registry(session)
    gaps = ask(session_factory, "gaps")
    assert r.owned not in slugs(gaps)
    assert slugs(gaps) == [r.discovered, r.unowned, r.orphaned, r.members]


def test_show_with_history(session, session_factory):
    r = build_registry(session)
    ask(session_factory, f"budget {r.owned} 5000", actor=OWNER)
    ask(session_factory, f"retire {r.owned}", actor=OWNER)  # refused, still history
    answer = ask(session_factory, f"show {r.owned}")
    assert isinstance(answer, owner.ShowAnswer)
    detail = answer.detail
    assert detail.view.budget_monthly == Decimal("5000")
    assert detail.view.exit_strategy == "Prompts are model-agnostic"
    assert [(h.action, h.outcome) for h in detail.history] == [
        ("workload.retire", "refused"),
        ("budget.set", "applied"),
    ]


def test_show_unknown_slug(session, session_factory):
    build_registry(session)
    answer = ask(session_factory, "show nope")
    assert isinstance(answer, owner.ErrorAnswer)
    assert "There is no workload called `nope`" in answer.message
    assert answer.example == "/llm-owner show search-summaries"


def test_assign_by_mention_creates_the_person_with_their_name(session, session_factory):
    r = build_registry(session)
    answer = ask(session_factory, f"assign {r.owned} <@{NEWBIE}|nina>", actor=OWNER)
    assert isinstance(answer, owner.ChangeAnswer)
    assert answer.change.before == {"owner": OWNER, "status": "active"}
    assert answer.detail.view.owner == PersonView(NEWBIE, None, "nina", True)


def test_refusal_answer(session, session_factory):
    r = build_registry(session)
    answer = ask(session_factory, f"assign {r.owned} <@{NEWBIE}>", actor=STRANGER)
    assert isinstance(answer, owner.RefusedAnswer)
    assert answer.outcome == "refused" and answer.slug == r.owned
    assert workload(session, r.owned).owner.slack_id == OWNER


def test_bad_input_inside_a_change_rolls_back_everything(session, session_factory):
    r = build_registry(session)
    people = count(session, Person)
    for text, message in [
        (f"assign {r.owned} <@{LEFT}>", "is deactivated in Slack"),
        (f"assign {r.owned} <@{BACKUP}>", "is the backup owner of"),
        (f"backup {r.owned} <@{OWNER}>", "already owns"),
        ("claim nope", "There is no workload called `nope`"),
    ]:
        answer = ask(session_factory, text, actor=ADMIN)
        assert isinstance(answer, owner.ErrorAnswer), text
        assert message in answer.message
    # a new person referenced by a failing change is not left behind
    ask(session_factory, "assign nope <@U0GHOST01>", actor=ADMIN)
    assert count(session, Person) == people
    assert audit_events(session) == []
    assert workload(session, r.owned).owner.slack_id == OWNER


def test_budget_with_currency(session, session_factory):
    r = build_registry(session)
    answer = ask(session_factory, f"budget {r.owned} 300 eur", actor=BACKUP)
    assert isinstance(answer, owner.ChangeAnswer)
    assert answer.change.before == {"budget_monthly": "4000", "currency": "USD"}
    assert answer.change.after == {"budget_monthly": "300", "currency": "EUR"}


# ---- register ----------------------------------------------------------------------------


def form(**overrides):
    values = dict(
        slug="support-triage",
        name="Support ticket triage",
        team="search",
        platform="bedrock",
        owner=NEWBIE,
        feature="triage",
        customer="all",
        budget="1,500",
        exit_strategy="Haiku → Llama 3.1 8B",
    )
    values.update(overrides)
    return owner.RegistrationForm(**values)


def test_register_creates_the_workload_and_audits_it(session, session_factory):
    build_registry(session)
    result = owner.register_workload(session_factory, form(), STRANGER, ADMINS)
    assert isinstance(result, owner.ChangeAnswer)
    created = workload(session, "support-triage")
    assert created.owner.slack_id == NEWBIE
    assert created.budget_monthly == Decimal("1500")
    assert created.team.slug == "search" and created.status == "active"
    (event,) = audit_events(session)
    assert (event.action, event.actor, event.before) == ("workload.register", STRANGER, None)
    assert event.after["owner"] == NEWBIE and event.after["team"] == "search"


def test_register_reports_every_bad_field_and_writes_nothing(session, session_factory):
    r = build_registry(session)
    workloads = count(session, Workload)
    result = owner.register_workload(
        session_factory,
        form(slug=r.owned, team="nope", platform="mainframe", budget="-5", name=" "),
        STRANGER,
        ADMINS,
    )
    assert isinstance(result, owner.RegistrationErrors)
    assert set(result.errors) == {"slug", "team", "platform", "budget", "name"}
    assert result.errors["name"] == "This field is required."
    result = owner.register_workload(
        session_factory,
        form(slug=r.owned, team="nope", platform="mainframe", name="ok", budget="0"),
        STRANGER,
        ADMINS,
    )
    assert set(result.errors) == {"slug", "team", "platform", "budget"}
    assert "already registered" in result.errors["slug"]
    assert "Known teams: search." in result.errors["team"]
    result = owner.register_workload(session_factory, form(slug="Bad Slug!"), STRANGER, ADMINS)
    assert set(result.errors) == {"slug"}
    assert result.errors["slug"].startswith(
        "Use lower-case letters and digits in words joined by single hyphens"
    )
    result = owner.register_workload(session_factory, form(owner=LEFT), STRANGER, ADMINS)
    assert "deactivated" in result.errors["owner"]
    assert count(session, Workload) == workloads
    assert audit_events(session) == []


def test_register_refuses_control_characters_under_their_fields(session, session_factory):
    build_registry(session)
    workloads = count(session, Workload)
    result = owner.register_workload(
        session_factory,
        form(name="Support\x00triage", team="search\x1b", exit_strategy="Line one\nline two\x07"),
        STRANGER,
        ADMINS,
    )
    assert isinstance(result, owner.RegistrationErrors)
    assert result.errors == {
        "name": "This field has a control character (U+0000) at character 8: "
        "remove it and try again.",
        "team": "This field has a control character (U+001B) at character 7: "
        "remove it and try again.",
        "exit_strategy": "This field has a control character (U+0007) at character 18: "
        "remove it and try again.",
    }
    assert count(session, Workload) == workloads and audit_events(session) == []
    # a multi-line field may hold line breaks and tabs
    accepted = owner.register_workload(
        session_factory, form(exit_strategy="Step one\r\n\tStep two"), STRANGER, ADMINS
    )
    assert isinstance(accepted, owner.ChangeAnswer)
    assert workload(session, "support-triage").exit_strategy == "Step one\r\n\tStep two"


def _record(session, slug, recommendation, at, note=None, outputs=None):
    record_decision(
        session,
        decided_by=OWNER,
        workload_slug=slug,
        recommendation=recommendation,
        inputs={"request": slug},
        outputs=outputs or {},
        note=note,
        at=at,
    )


def test_show_lists_the_latest_recorded_decisions(session, session_factory):
    r = build_registry(session)
    outputs = {
        "currency": "EUR",
        "monthly_cost": {"bedrock": 9000.5, "self_hosted_total": 6500.0},
        "break_even_distance": 2.4,
    }
    for day in range(1, 5):
        _record(session, r.owned, "bedrock", datetime(2026, 4, day, 9, tzinfo=UTC))
    _record(
        session, r.owned, "hybrid", datetime(2026, 5, 2, 9, tzinfo=UTC), "Peaks on Bedrock", outputs
    )
    _record(
        session, r.members, "self_hosted", datetime(2026, 5, 3, 9, tzinfo=UTC)
    )  # another workload
    session.commit()

    answer = ask(session_factory, f"show {r.owned}")
    assert isinstance(answer, owner.ShowAnswer)
    assert [(d.recommendation, d.at[:10]) for d in answer.decisions] == [
        ("hybrid", "2026-05-02"),
        ("bedrock", "2026-04-04"),
        ("bedrock", "2026-04-03"),
    ]
    assert answer.more_decisions == 2
    newest = answer.decisions[0]
    assert (newest.decided_by, newest.currency, newest.note) == (OWNER, "EUR", "Peaks on Bedrock")
    assert (newest.bedrock_monthly, newest.self_hosted_monthly) == (9000.5, 6500.0)
    assert newest.break_even_distance == 2.4
    # figures missing from an older record's outputs are None, not an error
    assert answer.decisions[1].bedrock_monthly is None
    assert answer.decisions[1].currency == "USD"

    nothing = ask(session_factory, f"show {r.unowned}")
    assert (nothing.decisions, nothing.more_decisions) == ((), 0)


def test_llmgov_ask_show_prints_the_decisions(engine, session, capsys):
    r = build_registry(session)
    for day in range(1, 6):
        _record(session, r.owned, "bedrock", datetime(2026, 4, day, 9, tzinfo=UTC))
    session.commit()
    code = main(["ask", f"/llm-owner show {r.owned}"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Recorded decisions" in out
    assert out.count(f"@{OWNER} · bedrock") == 3  # plain text: no <@…> nor *bold*
    assert "and 2 more" in out
    assert "5 Apr 2026" in out and "2 Apr 2026" not in out  # the newest three

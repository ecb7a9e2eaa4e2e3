"""`/llm-cost` grammar: scopes, periods, `public`, help, and one test per error message."""

from __future__ import annotations

from datetime import date

import pytest

from llmgov.commands.cost import HELP, HelpRequest, Period, Scope, parse_cost_text, resolve_period
from llmgov.commands.parsing import ParseError

TODAY = date(2026, 11, 20)


def parse(text: str):
    return parse_cost_text(text, today=TODAY)


def test_nothing_means_my_workloads_over_30_days_ephemeral():
    request = parse("")
    assert request.scope == Scope("mine")
    assert request.period == Period("30d", date(2026, 10, 22), TODAY)
    assert request.period.days == 30
    assert request.public is False
    assert request.as_of == TODAY


@pytest.mark.parametrize(
    ("text", "scope"),
    [
        ("search-summaries", Scope("workload", "search-summaries")),
        ("Search-Summaries", Scope("workload", "search-summaries")),
        ("team:search", Scope("team", "search")),
        ("feature:result-summaries", Scope("feature", "result-summaries")),
        ('customer:"Acme Corp"', Scope("customer", "Acme Corp")),
        ("all", Scope("all")),
        ("<@U0ANA0001|ana>", Scope("user", "U0ANA0001", "ana")),
        ("@ana", Scope("user", "ana")),
        ("workload:search-rerank", Scope("workload", "search-rerank")),
    ],
)
def test_scopes(text, scope):
    assert parse(text).scope == scope


@pytest.mark.parametrize(
    ("word", "start", "end"),
    [
        ("7d", date(2026, 11, 14), TODAY),
        ("90d", date(2026, 8, 23), TODAY),
        ("1d", TODAY, TODAY),
        ("mtd", date(2026, 11, 1), TODAY),
        ("last-month", date(2026, 10, 1), date(2026, 10, 31)),
        ("2026-02", date(2026, 2, 1), date(2026, 2, 28)),
        ("2026-11", date(2026, 11, 1), TODAY),  # the current month stops today
    ],
)
def test_periods(word, start, end):
    period = resolve_period(word, TODAY)
    assert (period.start, period.end) == (start, end)


def test_order_does_not_matter_and_public_posts_in_channel():
    request = parse("public mtd team:search")
    assert (request.scope, request.period.label, request.public) == (
        Scope("team", "search"),
        "mtd",
        True,
    )


@pytest.mark.parametrize(
    ("label", "previous"),
    [
        ("30d", (date(2026, 9, 22), date(2026, 10, 21))),
        ("mtd", (date(2026, 10, 1), date(2026, 10, 20))),  # the same days of last month
        ("last-month", (date(2026, 9, 1), date(2026, 9, 30))),
    ],
)
def test_previous_period(label, previous):
    period = resolve_period(label, TODAY).previous()
    assert (period.start, period.end) == previous


def test_help():
    assert isinstance(parse("help"), HelpRequest)
    assert "team:search" in HELP and "last-month" in HELP


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-13", "`2026-13` is not a month: write it as YYYY-MM."),
        ("2027-01", "`2027-01` is in the future; the latest month with spend is 2026-11."),
        ("500d", "`500d` is out of range: give between 1 and 365 days."),
        ("0d", "`0d` is out of range: give between 1 and 365 days."),
        ("7d 30d", "Two periods given (`7d` and `30d`): give one."),
        (
            "team:search all",
            "Two scopes given (`team:search` and `all`): give one.",
        ),
        (
            "tema:search",
            "`tema:search` is not a scope: the prefixes are team:, feature:, "
            "customer:. Did you mean `team:search`?",
        ),
        (
            "<#C0GOVERN01|gov>",
            "`<#C0GOVERN01|gov>` cannot be a scope: name a workload, @person, "
            "team:X, feature:X, customer:X or all.",
        ),
        (
            "what?!",
            "`what?!` is neither a workload slug, a period (7d, 30d, 90d, mtd, "
            "last-month, YYYY-MM) nor a scope (@person, team:X, feature:X, customer:X, all).",
        ),
    ],
)
def test_each_error_says_what_was_wrong_with_an_example(text, message):
    with pytest.raises(ParseError) as caught:
        parse(text)
    assert caught.value.message == message
    assert caught.value.example.startswith("/llm-cost ")
    # the example itself parses
    parse_cost_text(caught.value.example.removeprefix("/llm-cost "), today=TODAY)


def test_scope_token_round_trips():
    for text in ("search-summaries", "team:search", 'customer:"Acme Corp"', "all", "<@U0ANA0001>"):
        scope = parse(text).scope
        assert parse(scope.token()).scope.kind == scope.kind
        assert parse(scope.token()).scope.value == scope.value


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2026-10-01..2026-10-15", date(2026, 10, 1), date(2026, 10, 15)),
        ("last month", date(2026, 10, 1), date(2026, 10, 31)),
        ("team:search Last Month", date(2026, 10, 1), date(2026, 10, 31)),
        ("last-month", date(2026, 10, 1), date(2026, 10, 31)),
        ("365d", date(2025, 11, 21), TODAY),
        ("q3", date(2026, 7, 1), date(2026, 9, 30)),
        ("Q4", date(2026, 10, 1), TODAY),
        ("2025-Q1", date(2025, 1, 1), date(2025, 3, 31)),
    ],
)
def test_every_period_form(text, start, end):
    request = parse(text)
    assert (request.period.start, request.period.end) == (start, end)


@pytest.mark.parametrize(
    "text", ["30days", "q5", "2026-10-01", "2026-10-01..2026-13-01", "lastweek", "2026-Q9"]
)
def test_an_unrecognised_period_is_not_understood(text):
    with pytest.raises(ParseError, match="period not understood") as error:
        parse(f"team:search {text}")
    assert "Two scopes" not in str(error.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-10-15..2026-10-01", "ends before it starts"),
        ("2026-11-01..2026-12-01", "ends in the future"),
        ("2027-Q1", "is in the future"),
        ("366d", "between 1 and 365 days"),
    ],
)
def test_impossible_periods_say_why(text, message):
    with pytest.raises(ParseError, match=message):
        parse(text)

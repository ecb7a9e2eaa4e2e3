"""Tokenising slash-command text and parsing `/llm-owner`."""

from __future__ import annotations

from decimal import Decimal

import pytest

from llmgov.commands import owner
from llmgov.commands.parsing import (
    ParseError,
    TokenKind,
    control_character_problem,
    parse_amount,
    tokenize,
)


def test_tokenize_slack_escapes_and_quotes():
    text = (
        "assign <@U0ANA0001|ana> <#C0SEARCH01|search> <!subteam^S0LEADS1|@leads> <!here> "
        "<mailto:bo@example.com|bo@example.com> <https://x.example/a?b=1&amp;c=2|docs> "
        '"two words" “curly quoted” team:search a&amp;b &lt;tag&gt;'
    )
    tokens = tokenize(text)
    assert [(t.kind, t.value, t.label) for t in tokens] == [
        (TokenKind.WORD, "assign", None),
        (TokenKind.USER, "U0ANA0001", "ana"),
        (TokenKind.CHANNEL, "C0SEARCH01", "search"),
        (TokenKind.USERGROUP, "S0LEADS1", "@leads"),
        (TokenKind.SPECIAL, "here", None),
        (TokenKind.WORD, "bo@example.com", None),
        (TokenKind.LINK, "https://x.example/a?b=1&c=2", "docs"),
        (TokenKind.WORD, "two words", None),
        (TokenKind.WORD, "curly quoted", None),
        (TokenKind.WORD, "team:search", None),
        (TokenKind.WORD, "a&b", None),
        (TokenKind.WORD, "<tag>", None),
    ]
    assert tokens[9].key_value() == ("team", "search")
    assert tokens[0].key_value() is None


@pytest.mark.parametrize(
    ("text", "character", "position", "example"),
    [
        ("show search\x00", "U+0000", 12, "show search"),
        ("list team:\x1bsearch", "U+001B", 11, "list team:search"),
        ("show \x7f", "U+007F", 6, "show"),
        ("show \ud800x", "U+D800", 6, "show x"),  # a lone surrogate cannot be stored
        ("\x00", "U+0000", 1, "help"),  # nothing left to quote
    ],
)
def test_tokenize_refuses_control_characters(text, character, position, example):
    with pytest.raises(ParseError) as error:
        tokenize(text)
    assert error.value.message == (
        f"The command text has a control character ({character}) at character {position}: "
        "remove it and try again."
    )
    assert error.value.example == example


def test_tabs_and_line_breaks_are_whitespace_except_in_single_line_fields():
    assert [t.value for t in tokenize("list\tteam:search\r\n")] == ["list", "team:search"]
    assert control_character_problem("line one\nline two\twith a tab") is None
    assert control_character_problem("one\ttwo", "This field", multiline=False) == (
        "This field has a control character (U+0009) at character 4: remove it and try again."
    )
    assert control_character_problem("Ünïcødé \u200b \u202e é") is None  # not controls


def test_tokenize_blank_and_unclosed():
    assert tokenize("   ") == []
    assert [t.value for t in tokenize('"open quote <unclosed')] == ['"open', "quote", "<unclosed"]


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [
        ("4000", Decimal("4000"), None),
        ("4,000.50", Decimal("4000.50"), None),
        ("$1,250", Decimal("1250"), "USD"),
        ("€300", Decimal("300"), "EUR"),
        ("4k", Decimal("4000"), None),
    ],
)
def test_parse_amount(text, amount, currency):
    assert parse_amount(text, "ex") == (amount, currency)


@pytest.mark.parametrize("text", ["four", "-10", "4,00", "1.2.3", "$", "4000usd"])
def test_parse_amount_rejects(text):
    with pytest.raises(ParseError) as error:
        parse_amount(text, "/llm-owner budget x 4000")
    assert error.value.example == "/llm-owner budget x 4000"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", owner.Help()),
        ("help", owner.Help()),
        ("HELP", owner.Help()),
        ("register", owner.Register()),
        ("claim Search-Summaries", owner.Claim("search-summaries")),
        ("show x", owner.Show("x")),
        ("retire x", owner.Retire("x")),
        ("assign x <@U0ANA0001|ana>", owner.Assign("x", owner.PersonRef("U0ANA0001", "ana"))),
        ("assign x U0ANA0001", owner.Assign("x", owner.PersonRef("U0ANA0001"))),
        (
            "backup x <mailto:bo@example.com|bo@example.com>",
            owner.Backup("x", owner.PersonRef("bo@example.com")),
        ),
        ("budget x 4,000", owner.Budget("x", Decimal("4000"))),
        ("budget x 300 eur", owner.Budget("x", Decimal("300"), "EUR")),
        ("budget x $300", owner.Budget("x", Decimal("300"), "USD")),
        ("list", owner.ListWorkloads()),
        ("list team:Search", owner.ListWorkloads(team="search")),
        ("list <@U0ANA0001|ana>", owner.ListWorkloads(person=owner.PersonRef("U0ANA0001", "ana"))),
        ("list mine", owner.ListWorkloads(mine=True)),
        ("list all", owner.ListWorkloads(include_retired=True)),
        ("gaps", owner.Gaps()),
        ("gaps team:search", owner.Gaps(team="search")),
    ],
)
def test_parse(text, expected):
    assert owner.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message", "example"),
    [
        (
            "frobnicate",
            "`frobnicate` is not an /llm-owner subcommand",
            "/llm-owner list team:search",
        ),
        ("claim", "`claim` needs a workload slug", "/llm-owner claim search-summaries"),
        ("claim a b", "I did not understand `b`", "/llm-owner claim search-summaries"),
        (
            "assign x",
            "`assign` needs a workload slug and a person",
            "/llm-owner assign search-summaries @ana",
        ),
        (
            "assign x @ana",
            "reached the bot as plain text",
            "/llm-owner assign search-summaries @ana",
        ),
        (
            "assign x <!subteam^S1|@leads>",
            "not a user group",
            "/llm-owner assign search-summaries @ana",
        ),
        ("assign x <#C1|general>", "is not a person", "/llm-owner assign search-summaries @ana"),
        ("assign x nobody", "neither a Slack user id", "/llm-owner assign search-summaries @ana"),
        (
            "assign x U" + "A" * 32,
            f"'U{'A' * 32}' is 33 characters long, too long for a Slack user id (at most 32): "
            "mention the person with @ instead.",
            "/llm-owner assign search-summaries @ana",
        ),
        (
            "backup x <@W" + "B" * 40 + "|someone>",
            "is 41 characters long, too long for a Slack user id (at most 32)",
            "/llm-owner backup search-summaries @bo",
        ),
        (
            "assign x " + "a" * 309 + "@example.com",
            "is 321 characters long, too long for an email address (at most 320): "
            "check the address.",
            "/llm-owner assign search-summaries @ana",
        ),
        (
            "assign x <@>",
            "'' is neither a Slack user id",
            "/llm-owner assign search-summaries @ana",
        ),
        (
            "budget x lots",
            "`lots` is not an amount of money",
            "/llm-owner budget search-summaries 4000",
        ),
        (
            "budget x 0",
            "A budget must be a positive amount",
            "/llm-owner budget search-summaries 4000",
        ),
        (
            "budget x 10 dollars",
            "`dollars` is not a currency code",
            "/llm-owner budget search-summaries 4000",
        ),
        ("budget x $10 EUR", "is not in EUR", "/llm-owner budget search-summaries 4000"),
        ("list team:a team:b", "`list` takes one filter", "/llm-owner list team:search"),
        ("list owner:x", "cannot filter by `owner:`", "/llm-owner list team:search"),
        ("list everything", "is not a filter", "/llm-owner list team:search"),
        ("gaps mine", "takes an optional `team:X`", "/llm-owner gaps"),
        ("help me", "`help` takes nothing after it", "/llm-owner help"),
        ("claim team:x", "is not a workload slug", "/llm-owner claim search-summaries"),
    ],
)
def test_parse_errors_say_what_and_give_an_example(text, message, example):
    with pytest.raises(ParseError) as error:
        owner.parse(text)
    assert message in error.value.message
    assert error.value.example == example
    # the example itself parses
    owner.parse(
        example.removeprefix("/llm-owner ").replace("@ana", "U0ANA0001").replace("@bo", "U0BO00001")
    )


def test_the_longest_person_refs_the_registry_stores_are_accepted():
    longest_id, longest_email = "U" + "A" * 31, "a" * 64 + "@" + "b" * 247 + ".example"
    assert len(longest_email) == 320
    assert owner.parse(f"assign x {longest_id}") == owner.Assign("x", owner.PersonRef(longest_id))
    assert owner.parse(f"backup x <@{longest_id}|ana>").person == owner.PersonRef(longest_id, "ana")
    assert owner.parse(f"assign x {longest_email}").person.ref == longest_email


def test_changes_registry():
    assert owner.changes_registry(owner.parse("claim x"))
    assert owner.changes_registry(owner.parse("register"))
    assert not owner.changes_registry(owner.parse("list"))
    assert not owner.changes_registry(owner.parse("show x"))


def test_one_slug_rule_for_every_entry_point():
    from llmgov.models.registry import SLUG_MAX, is_slug

    assert is_slug("search-summaries") and is_slug("a" * SLUG_MAX)
    for bad in ("a" * (SLUG_MAX + 1), "a--b", "-a", "a-", "A", "a.b", "a_b", "a\n", ""):
        assert not is_slug(bad), bad


def test_ids_with_a_trailing_newline_are_not_ids():
    from llmgov.governance.people import EMAIL, SLACK_USER_ID

    assert SLACK_USER_ID.match("U0ANA0001")
    assert not SLACK_USER_ID.match("U0ANA0001\n")
    assert not EMAIL.match("ana@example.com\n")

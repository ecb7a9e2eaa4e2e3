"""mrkdwn helpers, money, truncation and the message-level limit validator."""

from __future__ import annotations

from decimal import Decimal

import pytest
from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from llmgov.bot.blocks.common import (
    BlockLimitError,
    Message,
    and_more,
    blocks_to_text,
    escape,
    escape_keeping_mentions,
    limited_blocks,
    mention,
    message_problems,
    money,
    mrkdwn_to_text,
    person,
    split_for_limit,
    truncate,
    usergroup_mention,
    validate_message,
)


def test_escape_only_the_three_characters():
    assert escape("a & b <!channel> > 'q' \"d\"") == "a &amp; b &lt;!channel&gt; &gt; 'q' \"d\""
    assert escape("&amp;") == "&amp;amp;"  # user text is taken literally


def test_escape_keeping_mentions():
    text = "ask <@U0ANA0001> not <!here> or <!subteam^S1> or <http://evil|click>"
    assert escape_keeping_mentions(text) == (
        "ask <@U0ANA0001> not &lt;!here&gt; or &lt;!subteam^S1&gt; or &lt;http://evil|click&gt;"
    )


def test_mentions_only_from_ids():
    assert mention("U0ANA0001") == "<@U0ANA0001>"
    assert usergroup_mention("S0LEADS01") == "<!subteam^S0LEADS01>"
    for bad in ("ana", "<!channel>", "U1|x>", ""):
        with pytest.raises(ValueError):
            mention(bad)
    with pytest.raises(ValueError):
        usergroup_mention("here")


def test_person():
    assert person("U0ANA0001", "Ana") == "<@U0ANA0001>"
    assert person(None, "Bo <b>") == "Bo &lt;b&gt;"
    assert person("bo@example.com", "bo@example.com") == "bo@example.com"
    assert person("U0LEN0001", "Len", active=False) == "<@U0LEN0001> (left)"


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (Decimal("4000"), "USD", "$4,000"),
        (Decimal("4000.00000000"), "USD", "$4,000"),
        (Decimal("1250.5"), "EUR", "€1,250.50"),
        (Decimal("0.125"), "GBP", "£0.13"),
        (Decimal("-12"), "USD", "-$12"),
        (3000, "chf", "3,000 CHF"),
        (None, "USD", "—"),
    ],
)
def test_money(amount, currency, text):
    assert money(amount, currency) == text


def test_truncate():
    assert truncate("short", 10) == "short"
    assert truncate("exactly10!", 10) == "exactly10!"
    assert truncate("a" * 20, 10) == "a" * 9 + "…"
    assert len(truncate("word " * 1000, 3000)) <= 3000


def test_split_and_and_more():
    assert split_for_limit([1, 2, 3], 5) == ([1, 2, 3], 0)
    assert split_for_limit(list(range(10)), 4) == ([0, 1, 2, 3], 6)
    assert and_more(6, "Narrow it.").to_dict() == {
        "elements": [{"text": "…and 6 more. Narrow it.", "type": "mrkdwn"}],
        "type": "context",
    }
    built = limited_blocks(list(range(7)), lambda i: DividerBlock(), 3)
    assert len(built) == 4 and built[-1].to_dict()["elements"][0]["text"] == "…and 4 more."
    assert len(limited_blocks([1, 2], lambda i: DividerBlock(), 3)) == 2


def section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=text))


def test_validator_accepts_a_message_at_the_limits():
    blocks = [section("x" * 3000)] + [DividerBlock()] * 48
    blocks.append(SectionBlock(fields=[MarkdownTextObject(text="y" * 2000)] * 10))
    assert len(blocks) == 50
    validate_message(blocks, "fallback")


def test_validator_reports_every_limit_the_sdk_skips():
    blocks = [section("x" * 3001), SectionBlock(fields=[MarkdownTextObject(text="y" * 2001)])]
    blocks += [DividerBlock()] * 49
    problems = message_problems(blocks, "")
    assert problems == [
        "the message has no text fallback",
        "51 blocks (max 50)",
        "block 0: section text has 3001 characters (max 3000)",
        "block 1: field 0 has 2001 characters (max 2000)",
    ]
    with pytest.raises(BlockLimitError) as error:
        validate_message(blocks, "")
    assert error.value.problems == problems


def test_validator_runs_the_sdk_checks_too():
    problems = message_problems(
        [HeaderBlock(text="h" * 151), SectionBlock(fields=[MarkdownTextObject(text="f")] * 11)],
        "t",
    )
    assert len(problems) == 2
    assert problems[0].startswith("block 0: ")
    assert problems[1].startswith("block 1: ")


def test_validator_checks_hand_written_dicts():
    ok = {"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}
    too_long = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}
    assert message_problems([ok], "t") == []
    assert message_problems([too_long], "t") == [
        "block 0: section text has 3001 characters (max 3000)"
    ]
    assert message_problems([{"type": "nonsense"}], "t") == ["block 0: not a Block Kit block"]


def test_surface_limit_is_100():
    blocks = [DividerBlock()] * 100
    assert message_problems(blocks, "t", max_blocks=100) == []
    assert message_problems(blocks, "t") == ["100 blocks (max 50)"]


def test_message_for_respond_validates():
    message = Message(text="hi", blocks=(section("hello"),))
    assert message.for_respond() == {
        "text": "hi",
        "blocks": [{"text": {"text": "hello", "type": "mrkdwn"}, "type": "section"}],
        "response_type": "ephemeral",
    }
    with pytest.raises(BlockLimitError):
        Message(text="hi", blocks=(section("x" * 3001),)).for_respond()


def test_mrkdwn_to_text():
    assert mrkdwn_to_text(
        "*bold* _it_ <@U0ANA0001> <@U0BO|bo> <#C1|general> <!subteam^S1|@leads> <!here> "
        "<https://x.example|docs> <https://y.example> a &lt;b&gt; &amp; snake_case_name"
    ) == (
        "bold it @U0ANA0001 @bo #general @leads @here docs (https://x.example) "
        "https://y.example a <b> & snake_case_name"
    )


def test_blocks_to_text():
    text = blocks_to_text(
        [
            HeaderBlock(text="Title"),
            section("*one* <@U1XX>"),
            SectionBlock(
                fields=[MarkdownTextObject(text="*Owner*\n<@U0ANA0001>")],
                accessory=ButtonElement(text="Claim", action_id="a", value="v"),
            ),
            ContextBlock(elements=[MarkdownTextObject(text="a"), MarkdownTextObject(text="b")]),
            DividerBlock(),
            ActionsBlock(elements=[ButtonElement(text="Go", action_id="g", value="v")]),
        ]
    )
    assert text == (
        "Title\n=====\n\none @U1XX\n\n  Owner: @U0ANA0001\n  [Claim]\n  a · b\n"
        + "-" * 40
        + "\n  [Go]\n"
    )

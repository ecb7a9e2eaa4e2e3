"""The breaker card and the Raise budget modal: golden dicts, the buttons per state, limits."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from llmgov.bot.blocks.breaker import breaker_message, raise_budget_modal
from llmgov.bot.blocks.common import message_problems
from llmgov.guardrails.card import BreakerCard, PersonRef
from llmgov.guardrails.state import Status

GOLDEN = Path(__file__).parent / "golden"
PLAN = (
    "deny every Bedrock inference path (runtime and Converse, async and batch, agents, flows, "
    "knowledge bases, rerank, guardrails, bedrock-mantle, API keys) to role `search-summarizer` "
    "in account 123456789012 (inline policy `llmgov-breaker-search-summaries`)"
)
UNDO = (
    "remove the inline policy `llmgov-breaker-search-summaries` from role "
    "`search-summarizer` in account 123456789012"
)
FIRED = BreakerCard(
    slug="search-summaries",
    name="Search result summaries",
    platform="bedrock",
    owner=PersonRef("U0OWNER01", "Olivia Owner"),
    backup_owner=PersonRef("U0BACKUP1", "Ben Backup"),
    budget=Decimal("4000"),
    currency="USD",
    status=Status.FIRED,
    since=datetime(2026, 3, 17, 10, 0, tzinfo=UTC),
    by="system",
    ignored_until=None,
    triggers=("Month-end projection is 180% of budget (the breaker fires above 150%)",),
    enabled=True,
    plan=(PLAN,),
    undo=(),
    tripped_dry_run=False,
    firing_id="20260317T100000Z",
    suggested_budget=Decimal("7200"),
)
TRIPPED_DRY_RUN = replace(
    FIRED,
    status=Status.TRIPPED,
    since=datetime(2026, 3, 17, 10, 5, tzinfo=UTC),
    by="U0BACKUP1",
    enabled=False,
    undo=(UNDO,),
    tripped_dry_run=True,
)
IGNORED = replace(
    FIRED,
    status=Status.IGNORED,
    by="U0OWNER01",
    since=datetime(2026, 3, 17, 10, 5, tzinfo=UTC),
    ignored_until=datetime(2026, 3, 18, 10, 5, tzinfo=UTC),
)


def golden(name: str, actual: dict) -> dict:
    """The stored golden dict; LLMGOV_UPDATE_GOLDEN=1 rewrites it from `actual` (then review)."""
    path = GOLDEN / f"{name}.json"
    if os.environ.get("LLMGOV_UPDATE_GOLDEN"):
        path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n")
    return json.loads(path.read_text())


def mrkdwn_texts(value) -> list[str]:
    if isinstance(value, dict):
        own = [value["text"]] if value.get("type") == "mrkdwn" else []
        return own + [t for v in value.values() for t in mrkdwn_texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in mrkdwn_texts(v)]
    return []


def buttons(message: dict) -> list[tuple[str, str]]:
    return [
        (element["action_id"], element["value"])
        for block in message["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]


@pytest.mark.parametrize(
    ("name", "card"),
    [
        ("breaker_fired", FIRED),
        ("breaker_tripped_dry_run", TRIPPED_DRY_RUN),
        ("breaker_ignored", IGNORED),
    ],
)
def test_golden_cards(name, card):
    actual = breaker_message(card).to_dict()
    assert actual == golden(name, actual)
    assert message_problems(actual["blocks"], actual["text"]) == []


def test_golden_raise_budget_modal():
    actual = raise_budget_modal(FIRED, channel="D0OWNER01", ts="1742205600.000100").to_dict()
    assert actual == golden("breaker_raise_budget_modal", actual)
    assert json.loads(actual["private_metadata"]) == {
        "slug": "search-summaries",
        "channel": "D0OWNER01",
        "ts": "1742205600.000100",
    }


@pytest.mark.parametrize(
    ("card", "expected"),
    [
        (FIRED, ["breaker_trip", "breaker_raise_budget", "breaker_ignore"]),
        (IGNORED, ["breaker_trip", "breaker_raise_budget"]),
        (replace(FIRED, status=Status.ARMED), ["breaker_trip", "breaker_raise_budget"]),
        (TRIPPED_DRY_RUN, ["breaker_reset"]),
    ],
)
def test_buttons_by_state_carry_the_slug(card, expected):
    found = buttons(breaker_message(card).to_dict())
    assert [action for action, _ in found] == expected
    assert {value for _, value in found} == {"search-summaries"}


def test_dry_run_is_said_on_the_card_and_in_the_confirm_dialog():
    message = breaker_message(replace(FIRED, enabled=False)).to_dict()
    context = next(b for b in message["blocks"] if b["type"] == "context")
    assert "Dry run" in context["elements"][0]["text"]
    trip = message["blocks"][-1]["elements"][0]
    assert trip["confirm"]["text"]["text"].startswith("Dry run: nothing will change in AWS")


def test_untrusted_text_is_escaped_and_long_text_fits_the_limits():
    hostile = replace(
        FIRED,
        triggers=("<!channel> look " + "x" * 5000,),
        plan=("set the SSM parameter `/a` to `<!here>`",) * 40,
        owner=PersonRef(None, "<@U0EVIL> & co"),
    )
    message = breaker_message(hostile).to_dict()
    # mrkdwn renders markup, so untrusted text must be escaped there (plain_text is literal)
    text = " ".join([message["text"], *mrkdwn_texts(message["blocks"])])
    assert "<!channel>" not in text and "<!here>" not in text and "<@U0EVIL>" not in text
    assert "&lt;!channel&gt;" in text and "&lt;!here&gt;" in text
    assert message_problems(message["blocks"], message["text"]) == []
    confirm = message["blocks"][-1]["elements"][0]["confirm"]["text"]["text"]
    assert len(confirm) <= 300

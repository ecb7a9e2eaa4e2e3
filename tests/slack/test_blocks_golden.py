"""Golden tests: each builder's `to_dict()` against the exact Block Kit we mean to send."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from llmgov.bot.blocks import owner as blocks
from llmgov.bot.blocks.common import message_problems
from llmgov.commands.owner import (
    ChangeAnswer,
    DecisionLine,
    ErrorAnswer,
    HelpAnswer,
    HistoryLine,
    ListAnswer,
    RefusedAnswer,
    ShowAnswer,
    WorkloadDetail,
)
from llmgov.governance.ownership import Change
from llmgov.governance.permissions import Action
from llmgov.governance.registry_view import Gap, PersonView, WorkloadView

ANA = PersonView("U0ANA0001", None, "Ana", True)
LEFT = PersonView("U0LEN0001", None, "Len", False)


def view(**overrides) -> WorkloadView:
    values = dict(
        slug="search-summaries",
        name="Search <summaries> & more",
        platform="bedrock",
        status="active",
        team="search",
        team_name="Search",
        team_channel=None,
        owner=ANA,
        backup_owner=None,
        feature="result-summaries",
        customer="all",
        critical_path=True,
        budget_monthly=Decimal("4000"),
        currency="USD",
        exit_strategy="Llama 3.1 8B on g6.xlarge",
        discovered_from=None,
        gaps=(),
    )
    values.update(overrides)
    return WorkloadView(**values)


UNOWNED = view(
    slug="query-rewrite",
    name=None,
    status="discovered",
    team=None,
    owner=None,
    platform="self_hosted",
    budget_monthly=None,
    exit_strategy=None,
    gaps=(Gap.DISCOVERED, Gap.UNOWNED, Gap.MISSING_BUDGET, Gap.MISSING_EXIT_STRATEGY),
)
CLAIM_BUTTON = {
    "action_id": "owner_claim",
    "style": "primary",
    "text": {"emoji": True, "text": "Claim", "type": "plain_text"},
    "type": "button",
    "value": "query-rewrite",
}


def mrkdwn_section(text: str) -> dict:
    return {"text": {"text": text, "type": "mrkdwn"}, "type": "section"}


def context(text: str) -> dict:
    return {"elements": [{"text": text, "type": "mrkdwn"}], "type": "context"}


def test_row_escapes_user_text_and_mentions_the_owner():
    assert blocks.workload_row_block(view()).to_dict() == mrkdwn_section(
        "*search-summaries* — Search &lt;summaries&gt; &amp; more\n"
        "owner <@U0ANA0001> · team search · bedrock · $4,000/month"
    )


def test_row_with_gaps_offers_claim():
    assert blocks.workload_row_block(UNOWNED).to_dict() == {
        "accessory": CLAIM_BUTTON,
        "text": {
            "text": "*query-rewrite*  _discovered_\n"
            "owner nobody · team — · self_hosted · no budget\n"
            "⚠️ discovered, not registered, no owner, no budget, no exit strategy",
            "type": "mrkdwn",
        },
        "type": "section",
    }


def test_row_of_a_workload_whose_owner_left():
    row = view(owner=LEFT, backup_owner=ANA, gaps=(Gap.OWNER_INACTIVE,))
    data = blocks.workload_row_block(row).to_dict()
    assert data["text"]["text"].splitlines()[1] == (
        "owner <@U0LEN0001> (left) · backup <@U0ANA0001> · team search · bedrock · $4,000/month"
    )
    assert data["accessory"]["value"] == "search-summaries"


def test_error_message_escapes_broadcasts_and_gives_an_example():
    message = blocks.error_message(
        ErrorAnswer("`<!channel>` is not an /llm-owner subcommand.", "/llm-owner list")
    )
    assert message.to_dict() == {
        "text": "⚠️ `&lt;!channel&gt;` is not an /llm-owner subcommand. "
        "For example: /llm-owner list",
        "blocks": [
            mrkdwn_section("⚠️ `&lt;!channel&gt;` is not an /llm-owner subcommand."),
            context("For example: `/llm-owner list`"),
        ],
    }


def test_refusal_message_keeps_resolved_mentions():
    reason = "only the owner <@U0ANA0001> or a governance admin can reassign x"
    message = blocks.refusal_message(RefusedAnswer("assign", "x", reason))
    text = f"🚫 Not done: {reason}."
    assert message.to_dict() == {
        "text": text,
        "blocks": [
            mrkdwn_section(text),
            context("The refusal is recorded in the audit trail."),
        ],
    }


def test_show_message():
    history = HistoryLine(
        at="2026-05-01T09:30:00+00:00",
        actor="U0ANA0001",
        action="budget.set",
        outcome="applied",
        before={"budget_monthly": "3000", "currency": "USD"},
        after={"budget_monthly": "4000", "currency": "USD"},
        reason="owner of search-summaries",
    )
    refused = HistoryLine(
        at="2026-05-02T10:00:00+00:00",
        actor="U0SAM0001",
        action="workload.retire",
        outcome="refused",
        before=None,
        after=None,
        reason="only a governance admin can retire search-summaries",
    )
    message = blocks.show_message(ShowAnswer(WorkloadDetail(view(), (refused, history))))

    def field(label, value):
        return {"text": f"*{label}*\n{value}", "type": "mrkdwn"}

    assert message.to_dict() == {
        "text": "search-summaries: owner <@U0ANA0001>, team search, active, $4,000/month",
        "blocks": [
            {
                "text": {"emoji": True, "text": "search-summaries", "type": "plain_text"},
                "type": "header",
            },
            mrkdwn_section("Search &lt;summaries&gt; &amp; more"),
            {
                "fields": [
                    field("Owner", "<@U0ANA0001>"),
                    field("Backup owner", "nobody"),
                    field("Team", "search"),
                    field("Platform", "bedrock"),
                    field("Status", "active"),
                    field("Budget", "$4,000/month"),
                    field("Feature", "result-summaries"),
                    field("Customer", "all"),
                    field("Critical path", "yes"),
                ],
                "type": "section",
            },
            mrkdwn_section("*Exit strategy*\nLlama 3.1 8B on g6.xlarge"),
            mrkdwn_section(
                "*Recent changes*\n"
                "2026-05-02 10:00 · <@U0SAM0001> · workload.retire refused: "
                "only a governance admin can retire search-summaries\n"
                "2026-05-01 09:30 · <@U0ANA0001> · budget.set: budget $3,000 → $4,000"
            ),
        ],
    }


def test_show_message_of_a_gap_has_a_claim_button_and_gap_line():
    message = blocks.show_message(ShowAnswer(WorkloadDetail(UNOWNED, ())))
    data = message.block_dicts()
    assert data[-2] == context(
        "⚠️ Gaps: discovered, not registered, no owner, no budget, no exit strategy"
    )
    assert data[-1] == {"elements": [CLAIM_BUTTON], "type": "actions"}
    assert data[2] == mrkdwn_section("*Exit strategy*\n_none recorded_")  # no name section


def decision(**overrides) -> DecisionLine:
    values = dict(
        at="2026-05-02T09:30:00+00:00",
        decided_by="U0ANA0001",
        recommendation="self_hosted",
        currency="USD",
        bedrock_monthly=12000.0,
        self_hosted_monthly=8450.5,
        break_even_distance=2.44,
        note=None,
    )
    values.update(overrides)
    return DecisionLine(**values)


def test_show_message_lists_recorded_decisions_before_the_claim_button():
    decisions = (
        decision(note="Agreed with <!channel> & *finance*\nin the review"),
        decision(
            at="2026-04-07T16:00:00+00:00",
            decided_by="U0SAM0001",
            recommendation="fix_ownership_first",
            bedrock_monthly=310.25,
            self_hosted_monthly=None,
            break_even_distance=0.35,
            currency="EUR",
        ),
        decision(
            at="2026-03-01T08:00:00+00:00",
            decided_by="someone@example.com",  # recorded before Slack ids were required
            recommendation="bedrock",
            bedrock_monthly=None,
            self_hosted_monthly=None,
            break_even_distance=None,
        ),
    )
    answer = ShowAnswer(WorkloadDetail(UNOWNED, ()), decisions, more_decisions=4)
    data = blocks.show_message(answer).block_dicts()
    assert data[-2] == mrkdwn_section(
        "*Recorded decisions*\n"
        "• 2 May 2026 · <@U0ANA0001> · *self hosted* · Bedrock $12,000/month, self-hosted "
        "$8,450.50/month · volume 2.4x the break-even\n"
        "      _Agreed with &lt;!channel&gt; &amp; ∗finance∗ in the review_\n"
        "• 7 Apr 2026 · <@U0SAM0001> · *fix ownership first* · Bedrock €310.25/month · "
        "volume at 35% of the break-even\n"
        "• 1 Mar 2026 · someone@example.com · *bedrock*\n"
        "_and 4 more_"
    )
    assert data[-1] == {"elements": [CLAIM_BUTTON], "type": "actions"}


def test_recorded_decisions_stay_within_block_kit_limits():
    notes = ("<!here> " * 500, "x" * 5000, "é" * 3000)
    answer = ShowAnswer(WorkloadDetail(view(), ()), tuple(decision(note=n) for n in notes), 10**6)
    message = blocks.show_message(answer)
    assert message_problems(message.blocks, message.text) == []
    section = message.block_dicts()[-1]["text"]["text"]
    assert "<!here>" not in section and section.endswith("_and 1000000 more_")
    assert len(section) < 3000  # three notes cut to 200 characters each fit whole


def test_show_message_without_decisions_has_no_decisions_section():
    data = blocks.show_message(ShowAnswer(WorkloadDetail(view(), ()))).block_dicts()
    assert "Recorded decisions" not in json.dumps(data)


def test_change_message_summary_then_details():
    change = Change(
        Action.ASSIGN,
        "search-summaries",
        applied=True,
        changed=True,
        reason="owner of search-summaries",
        before={"owner": "U0BOB0001", "status": "active"},
        after={"owner": "U0ANA0001", "status": "active"},
    )
    message = blocks.change_message(ChangeAnswer(change, WorkloadDetail(view(), ())))
    summary = "✅ *search-summaries* is now owned by <@U0ANA0001> (was <@U0BOB0001>)."
    assert message.text == summary
    assert message.block_dicts()[:3] == [
        mrkdwn_section(summary),
        {"type": "divider"},
        {
            "text": {"emoji": True, "text": "search-summaries", "type": "plain_text"},
            "type": "header",
        },
    ]


@pytest.mark.parametrize(
    ("action", "before", "summary"),
    [
        (Action.CLAIM, {"owner": None}, "✅ You now own *search-summaries*."),
        (
            Action.SET_BUDGET,
            {"budget_monthly": None, "currency": "USD"},
            "✅ The monthly budget of *search-summaries* is now $4,000/month (was none).",
        ),
        (
            Action.SET_BUDGET,
            {"budget_monthly": "3500.5", "currency": "USD"},
            "✅ The monthly budget of *search-summaries* is now $4,000/month (was $3,500.50).",
        ),
        (Action.RETIRE, {"status": "active"}, "✅ *search-summaries* is retired."),
        (
            Action.REGISTER,
            None,
            "✅ Registered *search-summaries*, owned by <@U0ANA0001>.",
        ),
    ],
)
def test_change_summaries(action, before, summary):
    change = Change(action, "search-summaries", True, True, "", before, {})
    assert blocks.change_message(ChangeAnswer(change, WorkloadDetail(view(), ()))).text == summary


def test_unchanged_summary():
    change = Change(Action.CLAIM, "search-summaries", True, False, "", {}, {})
    message = blocks.change_message(ChangeAnswer(change, WorkloadDetail(view(), ())))
    assert message.text == "Nothing to change: *search-summaries* is already like that."


def test_help_message():
    message = blocks.help_message(HelpAnswer())
    data = message.to_dict()
    assert data["text"] == (
        "/llm-owner: register, claim, assign, backup, budget, retire, list, show, gaps"
    )
    assert data["blocks"][0] == {
        "text": {
            "emoji": True,
            "text": "/llm-owner: who owns which LLM workload",
            "type": "plain_text",
        },
        "type": "header",
    }
    lines = data["blocks"][1]["text"]["text"].splitlines()
    assert lines[0] == "`/llm-owner register` — open a form to register a new workload"
    assert lines[-1] == "`/llm-owner help` — this help"
    assert len(lines) == 10


def test_list_message_truncates_long_lists_with_and_more():
    rows = tuple(view(slug=f"w-{i:03d}") for i in range(95))
    message = blocks.list_message(ListAnswer("Workloads", rows, "none"))
    data = message.block_dicts()
    assert len(data) == 1 + blocks.MAX_LIST_ROWS + 1 <= 50
    assert data[0] == mrkdwn_section("*Workloads* · 95 workloads")
    assert data[-1] == context(
        "…and 55 more. Narrow the list with `/llm-owner list team:X` or `/llm-owner list @user`."
    )
    assert message_problems(message.blocks, message.text) == []
    assert message.text.startswith("Workloads: 95 workloads — w-000, w-001")
    assert message.text.endswith("w-019 and 75 more")


def test_list_message_empty_and_with_person_title():
    message = blocks.list_message(
        ListAnswer("Workloads of <@U0ANA0001>", (), "<@U0ANA0001> owns no workloads.")
    )
    assert message.to_dict() == {
        "text": "Workloads of <@U0ANA0001>: 0 workloads",
        "blocks": [
            mrkdwn_section("*Workloads of <@U0ANA0001>* · 0 workloads"),
            mrkdwn_section("<@U0ANA0001> owns no workloads."),
        ],
    }


def test_register_modal():
    modal = blocks.register_modal("U0ANA0001", {"response_url": "https://example.com/r"})
    data = modal.to_dict()
    assert data["type"] == "modal" and data["callback_id"] == "owner_register"
    assert data["title"]["text"] == "Register a workload"
    assert json.loads(data["private_metadata"]) == {"response_url": "https://example.com/r"}
    assert [b["block_id"] for b in data["blocks"]] == list(blocks.REGISTER_FIELDS)
    by_id = {b["block_id"]: b for b in data["blocks"]}
    assert by_id["owner"]["element"] == {
        "action_id": "value",
        "initial_user": "U0ANA0001",
        "type": "users_select",
    }
    assert [o["value"] for o in by_id["platform"]["element"]["options"]] == [
        "bedrock",
        "self_hosted",
        "sagemaker",
        "other",
    ]
    assert by_id["platform"]["element"]["initial_option"]["value"] == "bedrock"
    assert by_id["slug"] == {
        "block_id": "slug",
        "element": {
            "action_id": "value",
            "max_length": 64,
            "multiline": False,
            "placeholder": {"emoji": True, "text": "search-summaries", "type": "plain_text"},
            "type": "plain_text_input",
        },
        "hint": {
            "emoji": True,
            "text": "Lower-case letters, digits and hyphens; how commands refer to it.",
            "type": "plain_text",
        },
        "label": {"emoji": True, "text": "Slug", "type": "plain_text"},
        "optional": False,
        "type": "input",
    }
    optional = {b["block_id"] for b in data["blocks"] if b.get("optional")}
    assert optional == {"feature", "customer", "budget", "exit_strategy"}


def test_form_values_reads_every_element_kind():
    state = {
        "values": {
            "slug": {"value": {"type": "plain_text_input", "value": "x"}},
            "platform": {
                "value": {"type": "static_select", "selected_option": {"value": "sagemaker"}}
            },
            "owner": {"value": {"type": "users_select", "selected_user": "U0ANA0001"}},
            "budget": {"value": {"type": "plain_text_input", "value": None}},
        }
    }
    values = blocks.form_values({"state": state})
    assert values["slug"] == "x"
    assert values["platform"] == "sagemaker"
    assert values["owner"] == "U0ANA0001"
    assert values["budget"] is None and values["name"] is None

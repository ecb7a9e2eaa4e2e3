"""Block Kit of `/llm-cost` and `/llm-decide`: golden files, limits, escaping."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from llmgov.bot.blocks.common import MAX_MESSAGE_BLOCKS, message_problems
from llmgov.bot.blocks.cost import cost_error_message, cost_help_message, cost_message
from llmgov.bot.blocks.decide import (
    decide_error_message,
    decide_form,
    decide_message,
    decision_view,
    form_fields,
    loading_view,
)
from llmgov.commands.cost import (
    FindingView,
    Range,
    WorkloadCost,
    build_cost_report,
    parse_cost_text,
)
from llmgov.commands.decide import build_decision, parse_decide_text
from tests.commands.golden import assert_golden
from tests.commands.world import AS_OF

# Everything the core would otherwise look up is given, so the golden files change only
# when the builders or the break-even arithmetic do (not when a benchmark table is updated).
PINNED = "instance_type=g6.12xlarge instance_price=4.6 throughput_per_instance=1141"
WHAT_IF = (
    "tokens_per_month=20B input_share=0.75 price_input=3 price_output=15 peak_to_mean=3 " + PINNED
)


def cost(session, text: str, **kwargs):
    return build_cost_report(session, parse_cost_text(text, today=AS_OF), **kwargs)


def pinned(report):
    """The report with the core's projections replaced by fixed figures: the golden files
    test the builders, not the forecasting (tested in economics)."""
    fixed = Range(Decimal("4000.00"), Decimal("3900.00"), Decimal("4100.00"))
    return replace(
        report,
        projection=fixed,
        workloads=tuple(
            replace(row, projected_month_end=fixed) if row.projected_month_end else row
            for row in report.workloads
        ),
    )


def decision(session, text: str):
    return build_decision(session, parse_decide_text(text, today=AS_OF))


def test_golden_cost_answer_for_one_workload_with_its_chart(session, world):
    message = cost_message(pinned(cost(session, "search-summaries 7d")), chart_file_id="F0CHART001")
    assert message_problems(message.blocks, message.text) == []
    assert_golden("cost_workload", message.to_dict())


def test_golden_cost_answer_for_a_team_without_chart(session, world):
    message = cost_message(
        pinned(cost(session, "team:search 30d")),
        chart_note="No chart: I am not in this channel. `/invite @llmgov` to get one.",
    )
    assert message_problems(message.blocks, message.text) == []
    assert_golden("cost_team", message.to_dict())


def test_golden_cost_answer_for_everything(session, world):
    message = cost_message(pinned(cost(session, "all mtd")))
    assert message_problems(message.blocks, message.text) == []
    assert_golden("cost_all", message.to_dict())


def test_golden_decision_for_a_workload_and_a_what_if(session, world):
    workload = decision(session, f"search-summaries {PINNED}")
    assert_golden("decide_workload", decide_message(workload).to_dict())
    assert_golden("decide_what_if", decide_message(decision(session, WHAT_IF)).to_dict())


def test_golden_form_and_loading_view():
    assert_golden("decide_form", decide_form().to_dict())
    assert (
        loading_view().to_dict()["blocks"][0]["text"]["text"].endswith("Working out the numbers…")
    )


def test_a_long_ranking_is_cut_with_and_n_more_under_50_blocks(session, world):
    report = cost(session, "all 30d")
    template = report.workloads[0]
    many = tuple(
        replace(template, workload=replace(template.workload, slug=f"w-{i:03d}"))
        for i in range(120)
    )
    findings = tuple(
        FindingView("spend_anomaly", "warning", "open", f"w-{i:03d}", "x" * 500, Decimal(1), "USD")
        for i in range(10)
    )
    big = replace(report, workloads=many, findings=findings, findings_total=75)
    message = cost_message(big, chart_file_id="F1")
    blocks = message.block_dicts()
    assert len(blocks) <= MAX_MESSAGE_BLOCKS
    assert message_problems(message.blocks, message.text) == []
    texts = [b["elements"][0]["text"] for b in blocks if b["type"] == "context"]
    assert any(t.startswith("…and 110 more.") for t in texts)
    findings_text = next(b["text"]["text"] for b in blocks if "*Open findings* (75)" in str(b))
    assert "…and 70 more." in findings_text
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in blocks)


def test_registry_and_alert_text_is_escaped(session, world):
    report = cost(session, "all 30d")
    row: WorkloadCost = report.workloads[0]
    hostile = replace(
        report,
        workloads=(replace(row, workload=replace(row.workload, team="<!channel> & co")),),
        findings=(
            FindingView(
                "spend_anomaly",
                "critical",
                "open",
                None,
                "<!here> <http://evil|x>",
                Decimal(1),
                "USD",
            ),
        ),
        findings_total=1,
    )
    rendered = str(cost_message(hostile).to_dict())
    assert "<!channel>" not in rendered and "<!here>" not in rendered
    assert (
        "&lt;!channel&gt; &amp; co" in rendered and "&lt;http[:]//evil|x&gt;" in rendered
    )  # the scheme defanged


def test_error_messages_escape_and_give_one_example():
    message = cost_error_message(
        "`<!channel>` is neither a workload slug", "/llm-cost team:search 30d"
    )
    text = message.blocks[0].to_dict()["text"]["text"]
    assert text == (
        ":warning: `&lt;!channel&gt;` is neither a workload slug\n"
        "For example: `/llm-cost team:search 30d` · `/llm-cost help` for more."
    )
    decide_text = decide_error_message("x", "/llm-decide a").blocks[0].to_dict()["text"]["text"]
    assert decide_text.endswith("For example: `/llm-decide a` · `/llm-decide help` for more.")
    assert "`7d`, `30d`, `90d`" in cost_help_message().blocks[0].to_dict()["text"]["text"]


def test_decision_view_fits_a_modal(session, world):
    view = decision_view(decision(session, "search-summaries")).to_dict()
    assert view["type"] == "modal" and len(view["blocks"]) <= 100
    assert view["blocks"][-1]["elements"][0]["action_id"] == "llm_decide_record"


@pytest.mark.parametrize(
    ("values", "fields", "blocks"),
    [
        (
            {"slug": {"value": {"value": " search-summaries "}}},
            {"slug": "search-summaries"},
            {"slug": "slug"},
        ),
        (
            {
                "tokens_per_month": {"value": {"value": "2B"}},
                "model": {"value": {"value": "0 = "}},  # kept whole: spaces and = included
                "flags": {"value": {"selected_options": [{"value": "ml_infra"}]}},
            },
            {"tokens_per_month": "2B", "model": "0 =", "ml_infra": "yes"},
            {"tokens_per_month": "tokens_per_month", "model": "model", "ml_infra": "flags"},
        ),
        ({"slug": {"value": {"value": None}}}, {}, {}),
    ],
)
def test_form_values_become_fields_with_their_blocks(values, fields, blocks):
    assert form_fields(values) == (fields, blocks)

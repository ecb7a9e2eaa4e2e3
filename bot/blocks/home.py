"""The App Home tab: your workloads this month and, for governance admins, the gap review."""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from llmgov.bot.blocks.common import (
    MAX_SURFACE_BLOCKS,
    and_more,
    money,
    split_for_limit,
    validate_message,
)
from llmgov.bot.blocks.cost import COST_OPEN_ACTION, DECIDE_OPEN_ACTION, workload_line
from llmgov.commands.owner import COMMAND

if TYPE_CHECKING:
    from llmgov.commands.home import HomeModel


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=text))


# ---- the spend-aware Home tab (commands.home) ---------------------------------------------
HOME_GAP_ROWS = 5
HOME_WORKLOADS = 25  # two blocks each: with the gap review, under the 100-block limit


def home_tab(model: HomeModel) -> View:
    """The Home tab: the opener's workloads this month (month to date, projection against
    budget, open alerts) with buttons into /llm-cost and /llm-decide; for governance admins
    the gap review's headline and top gaps."""
    report = model.report
    currency = report.currency
    roles = model.roles
    rows = list(report.workloads)
    blocks: list[Block] = [HeaderBlock(text="LLM governance")]
    if rows:
        over = sum(1 for r in rows if r.budget_exhausted_on is not None)
        summary = (
            f"*Your workloads* ({len(rows)}) · {money(report.month_to_date, currency)} this month"
        )
        if over:
            summary += f" · :warning: {over} run{'s' if over == 1 else ''} out of budget this month"
        blocks.append(_section(summary))
        shown, hidden = split_for_limit(rows, HOME_WORKLOADS)
        for row in shown:
            role = " _(backup)_" if roles.get(row.workload.slug) == "backup" else ""
            blocks.append(
                _section(workload_line(row, currency, report.period, with_total=False) + role)
            )
            blocks.append(
                ActionsBlock(
                    elements=[
                        ButtonElement(
                            text="Cost",
                            action_id=COST_OPEN_ACTION,
                            value=f"{row.workload.slug} 30d",
                        ),
                        ButtonElement(
                            text="Bedrock or self-host?",
                            action_id=DECIDE_OPEN_ACTION,
                            value=row.workload.slug,
                        ),
                    ]
                )
            )
        if hidden:
            blocks.append(and_more(hidden, "`/llm-cost` lists them all."))
    else:
        blocks.append(
            _section(
                "You own no workloads. `/llm-owner gaps` lists unowned ones to claim; "
                "`/llm-owner register` adds a new one."
            )
        )
    if model.gap_review is not None:
        # imported here: the gap review pulls in the checks and the core, which only admins need
        from llmgov.bot.blocks.gaps import gap_review_message

        blocks.append(DividerBlock())
        review = gap_review_message(model.gap_review, max_rows=HOME_GAP_ROWS)
        blocks.extend(review.blocks)
    blocks.append(
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text="`/llm-cost` for spend · `/llm-decide` for Bedrock vs self-hosting · "
                    f"`{COMMAND} help` for ownership"
                )
            ]
        )
    )
    validate_message(blocks, "home", max_blocks=MAX_SURFACE_BLOCKS)
    return View(type="home", blocks=blocks)


__all__ = ["home_tab"]

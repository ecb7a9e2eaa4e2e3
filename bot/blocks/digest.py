"""Block Kit for the weekly digest DM, and its one chart: pure functions of an `OwnerDigest`."""

from __future__ import annotations

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from llmgov.bot.blocks.common import (
    MAX_HEADER_TEXT,
    MAX_MESSAGE_BLOCKS,
    MAX_SECTION_TEXT,
    Message,
    and_more,
    split_for_limit,
    truncate,
)
from llmgov.bot.blocks.wording import render
from llmgov.bot.chart_worker import ChartWorker, draw_spend_chart
from llmgov.commands.cost import ChartSeries
from llmgov.governance.digest import OwnerDigest

TEMPLATE = "digest.md.j2"
# header + summary + divider + footer + "and N more" leave room for this many workloads
MAX_WORKLOADS = MAX_MESSAGE_BLOCKS - 6


def digest_message(digest: OwnerDigest) -> Message:
    title = render(TEMPLATE, "title", digest)
    summary = render(TEMPLATE, "summary", digest)
    blocks: list[Block] = [
        HeaderBlock(text=truncate(title, MAX_HEADER_TEXT)),
        SectionBlock(text=truncate(summary, MAX_SECTION_TEXT)),
        DividerBlock(),
    ]
    shown, hidden = split_for_limit(digest.workloads, MAX_WORKLOADS)
    for workload in shown:
        text = render(TEMPLATE, "workload", workload, digest.as_of)
        blocks.append(SectionBlock(text=truncate(text, MAX_SECTION_TEXT)))
    if hidden:
        blocks.append(and_more(hidden, "See them all with `/llm-cost`."))
    blocks.append(
        ContextBlock(elements=[MarkdownTextObject(text=render(TEMPLATE, "footer", digest))])
    )
    return Message(text=truncate(f"{title}: {summary}", 3000), blocks=tuple(blocks)).validate()


def digest_chart(
    digest: OwnerDigest, *, dpi: int = 80, charts: ChartWorker | None = None
) -> bytes | None:
    """The digest's chart as PNG bytes: daily spend and this month against the budget.
    Drawn by `charts` (the serving process's chart worker) when given."""
    chart = digest.chart
    if chart is None or not any(chart.daily):
        return None
    series = ChartSeries(
        days=chart.days,
        daily=chart.daily,
        estimated=chart.estimated,
        month_days=chart.month_days,
        month_actual=chart.month_actual,
        projection=chart.projection,
        projection_low=chart.projection_low,
        projection_high=chart.projection_high,
        budget=chart.budget,
    )
    title = f"Your workloads: spend to {digest.as_of:%-d %b}"
    return draw_spend_chart(charts, series, title, digest.currency, dpi=dpi)


__all__ = ["MAX_WORKLOADS", "digest_chart", "digest_message"]

"""Block Kit for the weekly ownership-gap review: a headline, then rows ranked by money at
stake, each with Claim and Assign buttons when the workload has no active owner."""

from __future__ import annotations

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

from llmgov.bot.blocks.alerts import ASSIGN_ACTION_ID, CLAIM_ACTION_ID
from llmgov.bot.blocks.common import (
    MAX_HEADER_TEXT,
    MAX_SECTION_TEXT,
    Message,
    and_more,
    truncate,
)
from llmgov.bot.blocks.wording import render
from llmgov.governance.gap_review import ROW_LABELS, GapReview, GapRow

TEMPLATE = "gap_review.md.j2"
# 4 blocks of header, headline, counts and divider, up to 2 per row, one "and N more"
MAX_ROWS = 22


def _row_blocks(row: GapRow, rank: int, window: int) -> list[Block]:
    text = render(TEMPLATE, "row", row, rank, ROW_LABELS, window)
    blocks: list[Block] = [SectionBlock(text=truncate(text, MAX_SECTION_TEXT))]
    if row.claimable:
        blocks.append(
            ActionsBlock(
                block_id=f"gap:{rank}",
                elements=[
                    ButtonElement(
                        text="Claim",
                        action_id=CLAIM_ACTION_ID,
                        value=row.workload,
                        style="primary",
                    ),
                    ButtonElement(text="Assign…", action_id=ASSIGN_ACTION_ID, value=row.workload),
                ],
            )
        )
    return blocks


def gap_review_message(review: GapReview, max_rows: int = MAX_ROWS) -> Message:
    title = render(TEMPLATE, "title", review)
    headline = render(TEMPLATE, "headline", review)
    blocks: list[Block] = [
        HeaderBlock(text=truncate(title, MAX_HEADER_TEXT)),
        SectionBlock(text=truncate(headline, MAX_SECTION_TEXT)),
    ]
    counts = render(TEMPLATE, "counts", review, ROW_LABELS)
    if counts:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=counts)]))
    if review.rows:
        blocks.append(DividerBlock())
    for rank, row in enumerate(review.rows[:max_rows], start=1):
        blocks.extend(_row_blocks(row, rank, review.window_days))
    hidden = len(review.rows) - min(len(review.rows), max_rows)
    if hidden:
        blocks.append(and_more(hidden, "See every gap with `/llm-owner gaps`."))
    text = truncate(f"{title}: {headline}", 3000)
    return Message(text=text, blocks=tuple(blocks)).validate()


__all__ = ["MAX_ROWS", "gap_review_message"]

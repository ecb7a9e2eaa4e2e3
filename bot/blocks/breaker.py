"""Block Kit for the cost circuit breaker: the card sent to the owner and admins, and the
Raise budget modal. Pure functions of `guardrails.card.BreakerCard`.

Buttons by state: fired → Trip, Raise budget, Ignore 24h; armed or ignored → Trip, Raise
budget; tripped → Reset. Every button's value is the workload slug.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    NumberInputElement,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from llmgov.bot.blocks.common import (
    MAX_FIELD_TEXT,
    MAX_HEADER_TEXT,
    MAX_SECTION_TEXT,
    Message,
    escape,
    escape_keeping_mentions,
    money,
    person,
    truncate,
)
from llmgov.guardrails.card import BreakerCard, PersonRef
from llmgov.guardrails.state import Status

TRIP = "breaker_trip"
RAISE_BUDGET = "breaker_raise_budget"
IGNORE = "breaker_ignore"
RESET = "breaker_reset"  # opens the reason modal: asks for a reset
APPROVE_RESET = "breaker_approve_reset"  # an admin approves the pending reset
RESET_CALLBACK_ID = "breaker_reset_request_submit"
REASON_BLOCK_ID = "reason"
REASON_ACTION_ID = "reason"
ACTIONS_BLOCK_ID = "breaker_actions"
RAISE_BUDGET_CALLBACK_ID = "breaker_raise_budget_submit"
BUDGET_BLOCK_ID = "budget"
BUDGET_ACTION_ID = "amount"

_HEADERS = {
    Status.FIRED: ":rotating_light: Cost circuit breaker fired: {slug}",
    Status.TRIPPED: ":octagonal_sign: Cost circuit breaker tripped: {slug}",
    Status.IGNORED: ":zzz: Cost circuit breaker ignored: {slug}",
    Status.ARMED: ":white_check_mark: Cost circuit breaker armed: {slug}",
    Status.TRIPPING: ":hourglass_flowing_sand: Cost circuit breaker tripping: {slug}",
    Status.RESETTING: ":hourglass_flowing_sand: Cost circuit breaker resetting: {slug}",
}
WHO_MAY_ACT = (
    "Only the owner, the backup owner or a governance admin can use these buttons. A reset "
    "needs a reason and a second person: a governance admin approves it."
)


def breaker_message(card: BreakerCard, *, audience: str | None = None) -> Message:
    """The breaker card for its current state (post it, or replace the original with it).

    `audience` is a first line in mrkdwn, e.g. a user group mention in the channel copy.
    """
    blocks: list[Any] = [
        HeaderBlock(text=truncate(_HEADERS[card.status].format(slug=card.slug), MAX_HEADER_TEXT))
    ]
    if audience:
        blocks.append(_section(audience))
    if card.triggers:
        reasons = "\n".join(f"• {escape(line)}" for line in card.triggers)
        blocks.append(_section(f"*Why it fired*\n{reasons}"))
    blocks.append(
        SectionBlock(
            fields=[
                _field("Owner", _person(card.owner)),
                _field("Backup owner", _person(card.backup_owner)),
                _field("Monthly budget", money(card.budget, card.currency)),
                _field("Platform", escape(card.platform)),
            ]
        )
    )
    blocks.append(_section(_status_text(card)))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=t) for t in _notes(card)]))
    buttons = _buttons(card)
    if buttons:
        blocks.append(ActionsBlock(block_id=ACTIONS_BLOCK_ID, elements=buttons))
    return Message(text=_fallback(card), blocks=tuple(blocks)).validate()


def reset_request_modal(card: BreakerCard, *, channel: str | None, ts: str | None) -> View:
    """The modal behind Reset: the reason an admin reads before approving."""
    metadata = json.dumps({"slug": card.slug, "channel": channel, "ts": ts})
    return View(
        type="modal",
        callback_id=RESET_CALLBACK_ID,
        private_metadata=metadata,
        title=PlainTextObject(text="Ask to reset"),
        submit=PlainTextObject(text="Ask"),
        close=PlainTextObject(text="Cancel"),
        blocks=[
            _section(
                f"*{escape(card.slug)}*: a reset lets spend through again. A governance admin "
                "other than you approves it, after reading why."
            ),
            InputBlock(
                block_id=REASON_BLOCK_ID,
                label=PlainTextObject(text="Why reset it?"),
                element=PlainTextInputElement(
                    action_id=REASON_ACTION_ID, multiline=True, min_length=5, max_length=500
                ),
            ),
        ],
    )


def raise_budget_modal(card: BreakerCard, *, channel: str | None, ts: str | None) -> View:
    """The modal behind Raise budget; `private_metadata` carries the slug and the card to update."""
    metadata = json.dumps({"slug": card.slug, "channel": channel, "ts": ts})
    initial = card.suggested_budget
    current = money(card.budget, card.currency) if card.budget is not None else "none"
    return View(
        type="modal",
        callback_id=RAISE_BUDGET_CALLBACK_ID,
        private_metadata=metadata,
        title=PlainTextObject(text="Raise budget"),
        submit=PlainTextObject(text="Raise"),
        close=PlainTextObject(text="Cancel"),
        blocks=[
            _section(
                f"*{escape(card.slug)}*: the monthly budget is now {current}. A higher budget "
                "arms the breaker again; it fires when the projection passes the new threshold."
            ),
            InputBlock(
                block_id=BUDGET_BLOCK_ID,
                label=PlainTextObject(text=f"New monthly budget ({card.currency})"),
                element=NumberInputElement(
                    action_id=BUDGET_ACTION_ID,
                    is_decimal_allowed=True,
                    min_value="0.01",
                    initial_value=str(initial) if initial is not None else None,
                ),
                hint=PlainTextObject(
                    text="The suggestion is the month-end projection, rounded up."
                ),
            ),
        ],
    )


# ---- pieces ----------------------------------------------------------------------------


def _status_text(card: BreakerCard) -> str:
    by = _actor(card.by)
    if card.status in (Status.TRIPPING, Status.RESETTING):
        verb = "trip" if card.status is Status.TRIPPING else "reset"
        return (
            f"A {verb} by {by} began {_date(card.since)} and is in progress; this card "
            "changes when it is done."
        )
    if card.status is Status.TRIPPED:
        tripped = f"Tripped by {by}, {_date(card.since)}."
        if card.tripped_dry_run:
            return (
                f"{tripped} *Dry run*: nothing was changed in AWS; it would "
                f"{_joined(card.plan)}.\n*Reset* arms the breaker again."
            )
        text = (
            f"{tripped} Applied: {_joined(card.plan)}.\n{_confirmation_text(card)}\n"
            f"*Reset* will {_joined(card.undo)}."
        )
        if card.reset_request:
            text += (
                f"\n*Reset asked* by {_actor(card.reset_request.get('by'))}: "
                f"\u201c{escape(str(card.reset_request.get('reason', '')))}\u201d. "
                "A governance admin other than them approves it."
            )
        return text
    trip = f"*Trip* will {_joined(card.plan)}." if card.plan else _no_target_text()
    if card.status is Status.IGNORED:
        return f"Ignored by {by} until {_date(card.ignored_until)}. {trip}"
    if card.status is Status.ARMED:
        return f"Armed again by {by}, {_date(card.since)}. {trip}"
    return (
        f"{trip}\n*Raise budget* sets a higher monthly budget; *Ignore 24h* keeps it quiet "
        "for a day."
    )


def _confirmation_text(card: BreakerCard) -> str:
    record = card.confirmation or {}
    if record.get("result") == "confirmed":
        return (
            "*Confirmed*: the deny was read back from IAM and denies every spending action "
            f"({escape(str(record.get('at', ''))[:16])} UTC)."
        )
    if record.get("result") == "unconfirmed":
        return (
            f"*Not confirmed*: {escape(str(record.get('detail', '')))}. Check the principal's "
            "policies in the IAM console and its calls in CloudTrail."
        )
    return (
        "*Not confirmed yet*: IAM changes take effect within minutes; the breaker reads the "
        "deny back and confirms it here."
    )


def _no_target_text() -> str:
    return (
        "Nothing can be switched off yet: add `principal` (Bedrock) or `ssm_parameter` "
        "(self-hosted) to its `breaker:` entry in the registry."
    )


def _notes(card: BreakerCard) -> list[str]:
    notes = []
    if card.stopped_by:
        notes.append(
            f"Spend is stopped anyway: the breaker of *{escape(card.stopped_by)}* was tripped "
            "on a role or user this workload shares. Resetting that breaker lets it through."
        )
    if card.would_trip:
        notes.append(
            f"{card.would_trip}: nothing was changed in AWS, and the breaker kept watching."
        )
    if not card.enabled:
        notes.append(
            "Dry run: this breaker is not enabled in the registry, so Trip records what it "
            "would do and changes nothing in AWS. Set `breaker: {enabled: true}` to arm it."
        )
    if card.keeps_billing:
        notes.append("Trip does not stop what bills by the hour: " + "; ".join(card.keeps_billing))
    notes.append(WHO_MAY_ACT)
    return notes


def _buttons(card: BreakerCard) -> list[ButtonElement]:
    if card.status in (Status.TRIPPING, Status.RESETTING):
        return []
    if card.status is Status.TRIPPED:
        if card.reset_request:
            return [
                ButtonElement(
                    text="Approve reset",
                    action_id=APPROVE_RESET,
                    value=card.slug,
                    style="primary",
                    confirm=_confirm(
                        "Approve the reset?",
                        f"This will {_joined(card.undo, mrkdwn=False)}. Spend can resume.",
                        "Approve",
                    ),
                )
            ]
        return [ButtonElement(text="Reset", action_id=RESET, value=card.slug, style="primary")]
    buttons = [
        ButtonElement(
            text="Trip",
            action_id=TRIP,
            value=card.slug,
            style="danger",
            confirm=_confirm(
                "Trip the breaker?",
                (
                    "Dry run: nothing will change in AWS; what it would do is recorded."
                    if not card.enabled
                    else f"This will {_joined(card.plan, mrkdwn=False)}. New calls fail until Reset; "
                    "hourly-billed capacity keeps billing (see the card)."
                ),
                "Trip",
            ),
        ),
        ButtonElement(text="Raise budget", action_id=RAISE_BUDGET, value=card.slug),
    ]
    if card.status is Status.FIRED:
        buttons.append(ButtonElement(text="Ignore 24h", action_id=IGNORE, value=card.slug))
    return buttons


def _confirm(title: str, text: str, confirm: str) -> ConfirmObject:
    # Slack caps the confirm text at 300 characters; plain text, so nothing renders as markup.
    return ConfirmObject(
        title=title,
        text=PlainTextObject(text=truncate(text.replace("`", ""), 300)),
        confirm=confirm,
        deny="Cancel",
    )


def _fallback(card: BreakerCard) -> str:
    if card.status is Status.TRIPPED:
        return f"The cost circuit breaker of {card.slug} is tripped."
    if card.status is Status.FIRED:
        why = escape("; ".join(card.triggers)) or "its policy"
        return f"The cost circuit breaker of {card.slug} fired: {why}. Trip, raise the budget or ignore it."
    return f"The cost circuit breaker of {card.slug} is {card.status.value}."


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=truncate(text, MAX_SECTION_TEXT)))


def _field(label: str, value: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=truncate(f"*{label}*\n{value}", MAX_FIELD_TEXT))


def _person(ref: PersonRef | None) -> str:
    return person(ref.slack_id, ref.label, active=ref.active) if ref else "nobody"


def _actor(actor: str | None) -> str:
    if actor == "system":
        return "the check job"
    return person(actor, actor) if actor else "someone"


def _joined(lines: tuple[str, ...], *, mrkdwn: bool = True) -> str:
    text = " and ".join(lines) if lines else "do nothing"
    # plan lines are composed by guardrails (their code spans are ours; the AWS names in
    # them are validated ARN parts): only `&<>` escaped, so the spans stay spans
    return escape_keeping_mentions(text) if mrkdwn else text


def _date(moment: datetime | None) -> str:
    if moment is None:
        return "at an unknown time"
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


__all__ = [
    "ACTIONS_BLOCK_ID",
    "APPROVE_RESET",
    "BUDGET_ACTION_ID",
    "BUDGET_BLOCK_ID",
    "IGNORE",
    "RAISE_BUDGET",
    "RAISE_BUDGET_CALLBACK_ID",
    "REASON_ACTION_ID",
    "REASON_BLOCK_ID",
    "RESET",
    "RESET_CALLBACK_ID",
    "TRIP",
    "breaker_message",
    "raise_budget_modal",
    "reset_request_modal",
]

"""Block Kit for alert posts and their thread replies: pure functions of an `AlertView`.

An alert post says who must act (`<@owner>`; else the team; else "unowned" with Claim and
Assign buttons), the money at stake, what changed and its likely driver, and one suggested
action, with the buttons Acknowledge, Snooze 7 days and Show cost. The same builder renders
the updates in place (acknowledged, snoozed, escalated, resolved), so a post always shows
the alert's current state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    SectionBlock,
    UserSelectElement,
)
from slack_sdk.models.views import View

from llmgov.bot.blocks.common import (
    MAX_FIELD_TEXT,
    MAX_SECTION_TEXT,
    Message,
    escape,
    mention,
    money,
    truncate,
)
from llmgov.bot.blocks.wording import render
from llmgov.models.governance import Alert, AlertStatus
from llmgov.models.registry import Workload

ACK_ACTION_ID = "alert_ack"
SNOOZE_ACTION_ID = "alert_snooze"
SHOW_COST_ACTION_ID = "alert_show_cost"
CLAIM_ACTION_ID = "workload_claim"
ASSIGN_ACTION_ID = "workload_assign"
ASSIGN_CALLBACK_ID = "workload_assign_modal"
ASSIGN_USER_BLOCK_ID = "new_owner"
SNOOZE_DAYS = 7
TEMPLATE = "alert.md.j2"

# Kinds whose subject is an ownership gap: the post offers Claim and Assign.
OWNERSHIP_KINDS = frozenset({"unowned_workload", "owner_inactive"})


@dataclass(frozen=True)
class AlertView:
    """What an alert post shows: the alert's state plus who it is routed to, as mrkdwn."""

    id: int
    kind: str
    severity: str
    status: str
    workload: str | None
    currency: str
    amount: Decimal
    message: str  # the finding's one line (plain text; escaped when rendered)
    details: dict[str, Any]
    target: str  # mrkdwn: "<@U…>", "the *Search* team", or "*Unowned*"
    owner_label: str  # for the Owner field
    team_label: str | None
    backup: str | None  # mention of an active backup owner
    offer_claim: bool  # Claim / Assign buttons
    handled_by: str | None = None  # mention of who acknowledged or snoozed
    snoozed_until: str | None = None
    first_seen: str = ""
    resolved_at: str | None = None
    as_of_day: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def resolved(self) -> bool:
        return self.status == AlertStatus.RESOLVED.value


def _day(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%d") if value else None


def _minute(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else None


def _mention_or_none(slack_id: str | None) -> str | None:
    try:
        return mention(slack_id) if slack_id else None
    except ValueError:
        return None


def alert_view(alert: Alert, workload: Workload | None) -> AlertView:
    """Route the alert: the active owner, else an active backup owner, else the team."""
    owner = workload.owner if workload is not None else None
    backup = workload.backup_owner if workload is not None else None
    team = workload.team if workload is not None else None
    owner_mention = _mention_or_none(owner.slack_id) if owner and owner.active else None
    backup_mention = _mention_or_none(backup.slack_id) if backup and backup.active else None
    team_label = escape(team.name or team.slug) if team else None

    if owner_mention:
        target, owner_label = owner_mention, owner_mention
    elif backup_mention:
        left = escape(owner.label) + " (left)" if owner else "nobody"
        target, owner_label = backup_mention, f"{left}; backup {backup_mention}"
    elif team_label:
        target = f"the *{team_label}* team"
        owner_label = escape(owner.label) + " (left)" if owner else "*Unowned*"
    elif workload is not None:
        target = "*Unowned*"
        owner_label = escape(owner.label) + " (left)" if owner else "*Unowned*"
    else:
        target, owner_label = "Governance", "—"

    unowned = workload is not None and not (owner and owner.active)
    return AlertView(
        id=alert.id,
        kind=alert.kind,
        severity=alert.severity,
        status=alert.status,
        workload=workload.slug if workload else alert.details.get("workload"),
        currency=alert.currency,
        amount=Decimal(alert.amount or 0),
        message=alert.message,
        details=dict(alert.details or {}),
        target=target,
        owner_label=owner_label,
        team_label=team_label,
        backup=backup_mention,
        offer_claim=unowned and (alert.kind in OWNERSHIP_KINDS or owner is None),
        handled_by=_mention_or_none(alert.acknowledged_by),
        snoozed_until=_minute(alert.snoozed_until),
        first_seen=_day(alert.first_seen_at) or "",
        resolved_at=_minute(alert.resolved_at),
        as_of_day=_day(alert.last_seen_at) or "",
    )


def _status_text(view: AlertView) -> str:
    if view.resolved:
        return ":white_check_mark: Resolved"
    if view.status == AlertStatus.ACKNOWLEDGED.value:
        return f"Acknowledged by {view.handled_by or 'someone'}"
    if view.status == AlertStatus.SNOOZED.value:
        return f"Snoozed until {view.snoozed_until}"
    return "Open"


def _buttons(view: AlertView) -> list[ButtonElement]:
    value = str(view.id)
    buttons: list[ButtonElement] = []
    if not view.resolved:
        if view.status != AlertStatus.ACKNOWLEDGED.value:
            buttons.append(ButtonElement(text="Acknowledge", action_id=ACK_ACTION_ID, value=value))
        if view.status != AlertStatus.SNOOZED.value:
            buttons.append(
                ButtonElement(
                    text=f"Snooze {SNOOZE_DAYS} days", action_id=SNOOZE_ACTION_ID, value=value
                )
            )
        if view.offer_claim and view.workload:
            buttons.append(
                ButtonElement(
                    text="Claim", action_id=CLAIM_ACTION_ID, value=view.workload, style="primary"
                )
            )
            buttons.append(
                ButtonElement(text="Assign…", action_id=ASSIGN_ACTION_ID, value=view.workload)
            )
    if view.workload:
        buttons.append(ButtonElement(text="Show cost", action_id=SHOW_COST_ACTION_ID, value=value))
    return buttons


def alert_message(view: AlertView) -> Message:
    """The alert post (and every update in place of it)."""
    headline = render(TEMPLATE, "headline", view)
    body = render(TEMPLATE, "body", view)
    changed = render(TEMPLATE, "what_changed", view)
    fields = [
        f"*Money at stake*\n{money(view.amount.quantize(Decimal('0.01')), view.currency)}",
        f"*Owner*\n{view.owner_label}",
        f"*Team*\n{view.team_label or '—'}",
        f"*Status*\n{_status_text(view)}",
    ]
    blocks: list[Block] = [
        SectionBlock(text=truncate(f"{headline}\n{body}", MAX_SECTION_TEXT)),
        SectionBlock(fields=[truncate(f, MAX_FIELD_TEXT) for f in fields]),
    ]
    if changed:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=truncate(changed, 2000))]))
    if not view.resolved:
        suggestion = render(TEMPLATE, "suggestion", view)
        if suggestion:
            blocks.append(
                SectionBlock(text=truncate(f"*Suggested action:* {suggestion}", MAX_SECTION_TEXT))
            )
    buttons = _buttons(view)
    if buttons:
        blocks.append(ActionsBlock(block_id=f"alert:{view.id}", elements=buttons))
    status = render(TEMPLATE, "status_line", view)
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=truncate(status, 2000))]))
    text = _fallback(view, body)
    return Message(text=text, blocks=tuple(blocks)).validate()


def alert_reply(view: AlertView, action: str, previous_severity: str | None) -> Message:
    """The thread reply that re-notifies (severity rose, or a snooze ended)."""
    text = render(TEMPLATE, "reply", view, action, previous_severity)
    if not text:
        raise ValueError(f"no thread reply for {action!r}")
    text = truncate(text, MAX_SECTION_TEXT)
    return Message(text=text, blocks=(SectionBlock(text=text),)).validate()


def assign_modal(slug: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """The Assign… modal: pick the new accountable owner of `slug`."""
    view = View(
        type="modal",
        callback_id=ASSIGN_CALLBACK_ID,
        title="Assign an owner",
        submit="Assign",
        close="Cancel",
        private_metadata=json.dumps(metadata),
        blocks=[
            SectionBlock(
                text=f"Who is accountable for the cost of `{escape(slug)}`? They will get its "
                "alerts and the weekly digest."
            ),
            InputBlock(
                block_id=ASSIGN_USER_BLOCK_ID,
                label="New owner",
                element=UserSelectElement(action_id="user"),
            ),
        ],
    )
    return view.to_dict()


def _fallback(view: AlertView, body: str) -> str:
    """The notification text: state, title, workload and the line, keeping the mention live."""
    state = "resolved" if view.resolved else view.severity
    subject = f" · {escape(view.workload)}" if view.workload else ""
    title = render(TEMPLATE, "title", view.kind)
    return truncate(f"[{state}] {title}{subject}: {body}", 3000)


__all__ = [
    "ACK_ACTION_ID",
    "ASSIGN_ACTION_ID",
    "ASSIGN_CALLBACK_ID",
    "ASSIGN_USER_BLOCK_ID",
    "CLAIM_ACTION_ID",
    "SHOW_COST_ACTION_ID",
    "SNOOZE_ACTION_ID",
    "SNOOZE_DAYS",
    "AlertView",
    "alert_message",
    "alert_reply",
    "alert_view",
    "assign_modal",
]

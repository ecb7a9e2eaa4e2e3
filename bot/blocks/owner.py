"""Block Kit for `/llm-owner`: pure functions from `commands.owner` answers to messages/views."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticSelectElement,
    UserSelectElement,
)
from slack_sdk.models.views import View

from llmgov.bot.blocks.common import (
    MAX_FIELD_TEXT,
    MAX_SECTION_TEXT,
    Message,
    escape,
    escape_code,
    escape_keeping_mentions,
    limited_blocks,
    money,
    person,
    truncate,
)
from llmgov.commands.owner import (
    COMMAND,
    Answer,
    ChangeAnswer,
    DecisionLine,
    ErrorAnswer,
    HelpAnswer,
    HistoryLine,
    ListAnswer,
    RefusedAnswer,
    RegistrationErrors,
    ShowAnswer,
    WorkloadDetail,
)
from llmgov.governance.permissions import Action
from llmgov.governance.registry_view import GAP_LABELS, Gap, PersonView, WorkloadView
from llmgov.models.registry import Platform, WorkloadStatus

CLAIM_ACTION_ID = "owner_claim"
REGISTER_CALLBACK_ID = "owner_register"
MAX_LIST_ROWS = 40  # + title + "and N more" stays well under 50 blocks
VALUE = "value"  # action_id of every input in the register form
MAX_NOTE = 200  # characters of a decision's note shown (3 decisions stay far under 3000)

# block_id of each register form input == the RegistrationForm field it fills
REGISTER_FIELDS = (
    "slug",
    "name",
    "team",
    "platform",
    "owner",
    "feature",
    "customer",
    "budget",
    "exit_strategy",
)


def _mrkdwn_section(text: str, accessory: Any = None) -> SectionBlock:
    return SectionBlock(
        text=MarkdownTextObject(text=truncate(text, MAX_SECTION_TEXT)), accessory=accessory
    )


def _context(*texts: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=t) for t in texts])


def _who(view: PersonView | None) -> str:
    if view is None:
        return "nobody"
    return person(view.slack_id, view.label, active=view.active)


def _key_to_mention(key: Any) -> str:
    """An audited person key (Slack id or email) as mrkdwn."""
    if key is None:
        return "nobody"
    return person(str(key), str(key))


def _gap_text(gaps: tuple[Gap, ...]) -> str:
    return ", ".join(GAP_LABELS[g] for g in gaps)


CLAIMABLE_GAPS = frozenset({Gap.DISCOVERED, Gap.UNOWNED, Gap.OWNER_INACTIVE})


def claimable(row: WorkloadView) -> bool:
    """Anyone may claim it (governance.permissions): show a Claim button."""
    return row.status != WorkloadStatus.RETIRED and bool(CLAIMABLE_GAPS & set(row.gaps))


def claim_button(slug: str) -> ButtonElement:
    return ButtonElement(text="Claim", action_id=CLAIM_ACTION_ID, value=slug, style="primary")


def _budget(row: WorkloadView) -> str:
    if row.budget_monthly is None:
        return "no budget"
    return f"{money(row.budget_monthly, row.currency)}/month"


def _row_text(row: WorkloadView) -> str:
    title = f"*{escape(row.slug)}*"
    if row.name:
        title += f" — {escape(truncate(row.name, 120))}"
    if row.status != WorkloadStatus.ACTIVE:
        title += f"  _{escape(row.status)}_"
    facts = [f"owner {_who(row.owner)}"]
    if row.backup_owner is not None:
        facts.append(f"backup {_who(row.backup_owner)}")
    facts += [f"team {escape(row.team or '—')}", escape_code(row.platform), _budget(row)]
    text = f"{title}\n{' · '.join(facts)}"
    if row.gaps:
        text += f"\n⚠️ {_gap_text(row.gaps)}"
    return text


def workload_row_block(row: WorkloadView) -> SectionBlock:
    return _mrkdwn_section(_row_text(row), claim_button(row.slug) if claimable(row) else None)


# ---- messages ------------------------------------------------------------------------


def help_message(answer: HelpAnswer) -> Message:
    lines = [f"`{COMMAND} {usage}` — {escape(what)}" for usage, what in answer.usage]
    return Message(
        text=f"{COMMAND}: register, claim, assign, backup, budget, retire, list, show, gaps",
        blocks=(
            HeaderBlock(text=f"{COMMAND}: who owns which LLM workload"),
            _mrkdwn_section("\n".join(lines)),
            _context(
                "Anyone may claim a workload without an active owner. The owner, the backup "
                "owner or a governance admin may reassign it or change its budget; only an "
                "admin may retire it. Every change and refusal is audited."
            ),
        ),
    )


def error_message(answer: ErrorAnswer) -> Message:
    text = f"⚠️ {answer.message}"
    blocks: list[Block] = [_mrkdwn_section(escape_keeping_mentions(text))]
    if answer.example:
        blocks.append(_context(f"For example: `{escape(answer.example)}`"))
    fallback = text + (f" For example: {answer.example}" if answer.example else "")
    return Message(text=escape_keeping_mentions(truncate(fallback, 3000)), blocks=tuple(blocks))


def refusal_message(answer: RefusedAnswer) -> Message:
    text = escape_keeping_mentions(f"🚫 Not done: {answer.reason}.")
    return Message(
        text=text,
        blocks=(
            _mrkdwn_section(text),
            _context("The refusal is recorded in the audit trail."),
        ),
    )


def list_message(answer: ListAnswer) -> Message:
    count = len(answer.rows)
    unowned = sum(1 for r in answer.rows if Gap.UNOWNED in r.gaps)
    summary = f"*{escape_keeping_mentions(answer.title)}* · {count} workload{'s' * (count != 1)}"
    if unowned:
        summary += f", {unowned} without an owner"
    blocks: list[Block] = [_mrkdwn_section(summary)]
    if not answer.rows:
        blocks.append(_mrkdwn_section(escape_keeping_mentions(answer.empty_hint)))
    else:
        blocks += limited_blocks(
            answer.rows,
            workload_row_block,
            MAX_LIST_ROWS,
            hint=f"Narrow the list with `{COMMAND} list team:X` or `{COMMAND} list @user`.",
        )
    fallback = f"{answer.title}: {count} workload{'s' * (count != 1)}"
    if answer.rows:
        fallback += " — " + ", ".join(r.slug for r in answer.rows[:20])
        if count > 20:
            fallback += f" and {count - 20} more"
    return Message(text=escape_keeping_mentions(truncate(fallback, 3000)), blocks=tuple(blocks))


def _field(label: str, value: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=truncate(f"*{label}*\n{value}", MAX_FIELD_TEXT))


def _audited_money(amount: Any, currency: Any) -> str:
    return money(Decimal(str(amount)), str(currency or "USD")) if amount else "none"


def _history_text(line: HistoryLine) -> str:
    when = line.at.replace("T", " ")[:16]
    who = _key_to_mention(line.actor)
    if line.outcome == "refused":
        return f"{when} · {who} · {escape(line.action)} refused: {escape_keeping_mentions(line.reason or '')}"
    changes = []
    before = line.before if isinstance(line.before, dict) else {}
    after = line.after if isinstance(line.after, dict) else {}
    for key, label in (
        ("owner", "owner"),
        ("backup_owner", "backup owner"),
        ("status", "status"),
        ("budget_monthly", "budget"),
    ):
        if key in after and before.get(key) != after.get(key):
            if key in ("owner", "backup_owner"):
                old, new = _key_to_mention(before.get(key)), _key_to_mention(after.get(key))
            elif key == "budget_monthly":
                old = _audited_money(before.get(key), before.get("currency"))
                new = _audited_money(after.get(key), after.get("currency"))
            else:
                old, new = escape(str(before.get(key) or "—")), escape(str(after.get(key) or "—"))
            changes.append(f"{label} {old} → {new}")
    detail = "; ".join(changes) if changes else ""
    return f"{when} · {who} · {escape(line.action)}" + (f": {detail}" if detail else "")


def _decision_text(line: DecisionLine) -> str:
    """`2 May 2026 · @ana · *self hosted* · Bedrock $9,000/month, self-hosted $6,500/month ·
    volume 2.4x the break-even`, then the note in italics."""
    when = datetime.fromisoformat(line.at)
    parts = [
        f"{when.day} {when:%b %Y}",
        _key_to_mention(line.decided_by),
        f"*{escape(line.recommendation.replace('_', ' '))}*",
    ]
    costs = [
        f"{label} {money(amount, line.currency)}/month"
        for label, amount in (
            ("Bedrock", line.bedrock_monthly),
            ("self-hosted", line.self_hosted_monthly),
        )
        if amount is not None
    ]
    if costs:
        parts.append(", ".join(costs))
    ratio = line.break_even_distance
    if ratio is not None:
        parts.append(
            f"volume {ratio:.1f}x the break-even"
            if ratio >= 1
            else f"volume at {ratio:.0%} of the break-even"
        )
    text = " · ".join(parts)
    if line.note:
        text += f"\n      _{escape(truncate(' '.join(line.note.split()), MAX_NOTE))}_"
    return text


def decisions_block(decisions: Sequence[DecisionLine], more: int) -> SectionBlock:
    """The latest recorded decisions, newest first, and how many older ones are not shown."""
    lines = [f"• {_decision_text(line)}" for line in decisions]
    if more:
        lines.append(f"_and {more} more_")
    return _mrkdwn_section("*Recorded decisions*\n" + "\n".join(lines))


def detail_blocks(
    detail: WorkloadDetail, decisions: Sequence[DecisionLine] = (), more_decisions: int = 0
) -> list[Block]:
    """One workload; with its recorded decisions when given (the show answer)."""
    row = detail.view
    blocks: list[Block] = [
        HeaderBlock(text=truncate(row.slug, 150)),
    ]
    if row.name:
        blocks.append(_mrkdwn_section(escape(row.name)))
    blocks.append(
        SectionBlock(
            fields=[
                _field("Owner", _who(row.owner)),
                _field("Backup owner", _who(row.backup_owner)),
                _field("Team", escape(row.team or "—")),
                _field("Platform", escape_code(row.platform)),
                _field("Status", escape(row.status)),
                _field("Budget", _budget(row)),
                _field("Feature", escape(row.feature or "—")),
                _field("Customer", escape(row.customer or "—")),
                _field("Critical path", "yes" if row.critical_path else "no"),
            ]
        )
    )
    exit_text = escape(row.exit_strategy) if row.exit_strategy else "_none recorded_"
    blocks.append(_mrkdwn_section(f"*Exit strategy*\n{exit_text}"))
    if row.gaps:
        blocks.append(_context(f"⚠️ Gaps: {_gap_text(row.gaps)}"))
    if detail.history:
        lines = "\n".join(_history_text(line) for line in detail.history)
        blocks.append(_mrkdwn_section(f"*Recent changes*\n{lines}"))
    if decisions:
        blocks.append(decisions_block(decisions, more_decisions))
    if claimable(row):
        blocks.append(ActionsBlock(elements=[claim_button(row.slug)]))
    return blocks


def _detail_fallback(detail: WorkloadDetail) -> str:
    row = detail.view
    text = (
        f"{escape(row.slug)}: owner {_who(row.owner)}, team {escape(row.team or '—')}, "
        f"{escape(row.status)}, {_budget(row)}"
    )
    if row.gaps:
        text += f"; gaps: {_gap_text(row.gaps)}"
    return text


def show_message(answer: ShowAnswer) -> Message:
    blocks = detail_blocks(answer.detail, answer.decisions, answer.more_decisions)
    return Message(text=_detail_fallback(answer.detail), blocks=tuple(blocks))


def _change_summary(answer: ChangeAnswer) -> str:
    change, row = answer.change, answer.detail.view
    slug = f"*{escape(change.slug)}*"
    before = change.before or {}
    if not change.changed:
        return f"Nothing to change: {slug} is already like that."
    if change.action is Action.CLAIM:
        return f"✅ You now own {slug}."
    if change.action is Action.ASSIGN:
        return (
            f"✅ {slug} is now owned by {_who(row.owner)} "
            f"(was {_key_to_mention(before.get('owner'))})."
        )
    if change.action is Action.SET_BACKUP:
        return f"✅ {_who(row.backup_owner)} is now the backup owner of {slug}."
    if change.action is Action.SET_BUDGET:
        old = before.get("budget_monthly")
        was = money(old, before.get("currency") or row.currency) if old else "none"
        return f"✅ The monthly budget of {slug} is now {_budget(row)} (was {was})."
    if change.action is Action.RETIRE:
        return f"✅ {slug} is retired."
    if change.action is Action.REGISTER:
        return f"✅ Registered {slug}, owned by {_who(row.owner)}."
    return f"✅ Done: {change.action} {slug}."  # pragma: no cover


def change_message(answer: ChangeAnswer) -> Message:
    summary = _change_summary(answer)
    blocks: list[Block] = [_mrkdwn_section(summary), DividerBlock()]
    blocks += detail_blocks(answer.detail)
    return Message(text=summary, blocks=tuple(blocks))


# ---- the register modal --------------------------------------------------------------


def _text_input(
    block_id: str,
    label: str,
    *,
    placeholder: str | None = None,
    hint: str | None = None,
    optional: bool = False,
    multiline: bool = False,
    max_length: int | None = None,
) -> InputBlock:
    return InputBlock(
        block_id=block_id,
        label=label,
        element=PlainTextInputElement(
            action_id=VALUE,
            placeholder=placeholder,
            multiline=multiline,
            max_length=max_length,
        ),
        hint=hint,
        optional=optional,
    )


def register_modal(actor: str, private_metadata: dict[str, str]) -> View:
    """The register form. `private_metadata` carries where to answer (response_url)."""
    platforms = [Option(value=p.value, text=p.value.replace("_", "-")) for p in Platform]
    return View(
        type="modal",
        callback_id=REGISTER_CALLBACK_ID,
        title="Register a workload",
        submit="Register",
        close="Cancel",
        private_metadata=json.dumps(private_metadata, separators=(",", ":")),
        blocks=[
            _text_input(
                "slug",
                "Slug",
                placeholder="search-summaries",
                hint="Lower-case letters, digits and hyphens; how commands refer to it.",
                max_length=64,
            ),
            _text_input("name", "Name", placeholder="Search result summaries", max_length=200),
            _text_input("team", "Team", placeholder="search", hint="The team's slug."),
            InputBlock(
                block_id="platform",
                label="Platform",
                element=StaticSelectElement(
                    action_id=VALUE, options=platforms, initial_option=platforms[0]
                ),
            ),
            InputBlock(
                block_id="owner",
                label="Accountable owner",
                element=UserSelectElement(action_id=VALUE, initial_user=actor),
            ),
            _text_input(
                "feature", "Feature", placeholder="result-summaries", optional=True, max_length=200
            ),
            _text_input("customer", "Customer", placeholder="all", optional=True, max_length=200),
            _text_input(
                "budget",
                "Monthly budget",
                placeholder="4000",
                hint="In the organisation's currency.",
                optional=True,
            ),
            _text_input(
                "exit_strategy",
                "Exit strategy",
                placeholder="Prompts are model-agnostic; Llama 3.1 8B evaluated on g6.xlarge",
                optional=True,
                multiline=True,
                max_length=3000,
            ),
        ],
    )


def form_values(view: dict[str, Any]) -> dict[str, str | None]:
    """The register form's values from a view_submission's `view`, by field name."""
    state = (view.get("state") or {}).get("values") or {}
    values: dict[str, str | None] = {}
    for name in REGISTER_FIELDS:
        element = (state.get(name) or {}).get(VALUE) or {}
        if "selected_option" in element:
            values[name] = (element.get("selected_option") or {}).get("value")
        elif "selected_user" in element:
            values[name] = element.get("selected_user")
        else:
            values[name] = element.get("value")
    return values


def owner_message(answer: Answer) -> Message:
    """The message for any `/llm-owner` answer (OpenRegisterForm has none: it is a modal)."""
    if isinstance(answer, HelpAnswer):
        return help_message(answer)
    if isinstance(answer, ErrorAnswer):
        return error_message(answer)
    if isinstance(answer, RefusedAnswer):
        return refusal_message(answer)
    if isinstance(answer, ListAnswer):
        return list_message(answer)
    if isinstance(answer, ShowAnswer):
        return show_message(answer)
    if isinstance(answer, ChangeAnswer):
        return change_message(answer)
    if isinstance(answer, RegistrationErrors):
        return error_message(
            ErrorAnswer("; ".join(f"{k}: {v}" for k, v in answer.errors.items()), None)
        )
    raise TypeError(f"no message for {type(answer).__name__}")


__all__ = [
    "CLAIM_ACTION_ID",
    "REGISTER_CALLBACK_ID",
    "REGISTER_FIELDS",
    "change_message",
    "claim_button",
    "decisions_block",
    "detail_blocks",
    "error_message",
    "form_values",
    "help_message",
    "list_message",
    "owner_message",
    "refusal_message",
    "register_modal",
    "show_message",
    "workload_row_block",
]

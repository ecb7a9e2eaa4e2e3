"""Block Kit for `/llm-decide`: the answer, the form (a modal) and its loading state.

The answer leads with the recommendation and why, then the money both ways (people cost
apart), the break-even and how far the workload is from it, each framework criterion with
its evidence, the sensitivity, the risks, who owns cost, control and failure, and whether
an exit strategy exists. A "Record decision" button keeps it as a decision record.
"""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    CheckboxesElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    SectionBlock,
)
from slack_sdk.models.views import View

from llmgov.bot.blocks.common import (
    MAX_FIELD_TEXT,
    MAX_HEADER_TEXT,
    MAX_SECTION_TEXT,
    MAX_SURFACE_BLOCKS,
    Message,
    escape,
    escape_keeping_mentions,
    truncate,
    validate_message,
)
from llmgov.commands.decide import Decision, fmt_money, fmt_tokens, help_text

RECORD_ACTION = "llm_decide_record"
FORM_CALLBACK = "llm_decide_form"
RESULT_CALLBACK = "llm_decide_result"
INPUT_ACTION = "value"  # action_id of every text input of the form
FLAGS_BLOCK = "flags"
MODAL_TITLE = "Bedrock or self-host?"

TITLES = {
    "bedrock": ":cloud: Stay on Bedrock",
    "self_hosted": ":desktop_computer: Self-host",
    "hybrid": ":twisted_rightwards_arrows: Hybrid: base load self-hosted, peaks on Bedrock",
    "fix_ownership_first": ":warning: Fix ownership first",
    "insufficient_data": ":grey_question: Not enough data to decide",
}

# The form's text inputs: (block id = decide key, label, placeholder, hint).
FORM_FIELDS: tuple[tuple[str, str, str, str], ...] = (
    ("slug", "Registered workload", "search-summaries", "Leave empty for a what-if."),
    ("tokens_per_month", "Tokens a month", "2B", "Input + output; k, M, B suffixes."),
    ("input_share", "Input share", "0.8", "Share of tokens that are input."),
    ("model", "Bedrock model", "anthropic.claude-3-haiku-20240307-v1:0", "To price Bedrock."),
    ("instance_type", "GPU instance type", "g6.12xlarge", "Empty: the cheapest that fits."),
    ("peak_to_mean", "Peak hour / mean hour", "2.5", "Traffic shape; measured if empty."),
    ("latency_p95_ms", "Latency objective (p95, ms)", "800", "Empty: the registry's."),
    ("residency", "Data residency", "eu", "e.g. eu, us, on_prem."),
)
FORM_FLAGS: tuple[tuple[str, str], ...] = (
    ("ml_infra", "We already run GPUs, MLOps and on-call"),
    ("critical_path", "On the product's critical path"),
    ("experiment", "An experiment"),
    ("fine_tuning", "Needs fine-tuning"),
    ("deterministic", "Needs deterministic output"),
    ("aws_native", "Needs AWS-native features (Guardrails, KB, Agents)"),
)


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=truncate(text, MAX_SECTION_TEXT)))


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=truncate(text, MAX_FIELD_TEXT))])


def _money(value: float | None, currency: str) -> str:
    return fmt_money(value, currency)


def _check(holds: bool) -> str:
    return ":white_check_mark:" if holds else ":heavy_minus_sign:"


def record_value(decision: Decision) -> str:
    """The Record button's value: the request to recompute (never the data itself)."""
    request = decision.request
    return json.dumps({"t": request.command_text(), "d": request.as_of.isoformat()})


def _bedrock_field(decision: Decision) -> str:
    currency = decision.currency
    inputs = decision.inputs
    measured = inputs.measured_monthly_cost
    listed = decision.bedrock_list_monthly
    if decision.bedrock_basis == "measured":
        text = f"*Bedrock*\n{_money(measured, currency)} a month, billed"
        if listed is not None:
            gap = decision.gap or 0.0
            text += (
                f" (list-price estimate {_money(listed, currency)}; gap {_money(gap, currency)})"
            )
        return text
    text = f"*Bedrock*\n{_money(decision.bedrock_monthly, currency)} a month"
    if decision.bedrock_basis == "provisioned_throughput":
        text += " (Provisioned Throughput)"
    elif inputs.bedrock_tier != "standard":
        text += f" ({inputs.bedrock_tier} tier)"
    else:
        text += " at list prices"
    if measured is not None and inputs.platform in (None, "bedrock"):
        text += f"; billed {_money(measured, currency)}"
    return text


def _self_hosted_field(decision: Decision) -> str:
    currency = decision.currency
    plan = decision.plan
    model = ""
    if plan is not None:
        model = f" · {escape(plan.open_model)} ({plan.open_model_params_b:g}B, {plan.precision})"
    people = _money(decision.self_hosted_people_monthly, currency)
    measured = decision.inputs.measured_monthly_cost
    if measured is not None and decision.inputs.platform in ("self_hosted", "sagemaker"):
        model += f"; billed today {_money(measured, currency)}"
    if decision.self_hosted_infra_monthly is not None:
        fleet = f"{decision.instances}× {escape(decision.inputs.instance_type or '?')}"
        buy = "" if plan is None or plan.purchase == "on_demand" else f", {plan.purchase}"
        return (
            f"*Self-hosted*\n{_money(decision.self_hosted_monthly, currency)} a month: GPUs "
            f"{_money(decision.self_hosted_infra_monthly, currency)} ({fleet}{buy}) + people "
            f"{people}{model}"
        )
    if decision.self_hosted_floor is not None:
        return (
            f"*Self-hosted*\nat least {_money(decision.self_hosted_floor, currency)} a month "
            f"(the smallest fleet that holds the model, people included){model}"
        )
    return f"*Self-hosted*\nGPUs unknown + people {people}{model}"


def _fields(decision: Decision) -> list[str]:
    currency = decision.currency
    inputs = decision.inputs
    fields = [_bedrock_field(decision), _self_hosted_field(decision)]
    per_mtok = decision.cost_per_mtok
    if per_mtok["bedrock"] is not None or per_mtok["self_hosted"] is not None:

        def rate(value):
            return fmt_money(value, currency, digits=2)

        fields.append(
            f"*Per million tokens*\nBedrock {rate(per_mtok['bedrock'])} · self-hosted "
            f"{rate(per_mtok['self_hosted'])} (reservation: every GPU hour paid)"
        )
    if decision.break_even_tokens is not None:
        ratio = decision.distance_to_break_even or 0.0
        where = f"{ratio:.1f}x above it" if ratio >= 1 else f"at {ratio:.0%} of it"
        fields.append(
            f"*Break-even*\n{fmt_tokens(decision.break_even_tokens)} tokens a month; you are {where}"
        )
    elif decision.self_hosted_infra_monthly is not None:
        fields.append(
            "*Break-even*\nnever: a full instance costs more than the tokens it carries cost on Bedrock"
        )
    fields.append(
        f"*Volume*\n{fmt_tokens(inputs.monthly_tokens)} tokens a month, "
        f"{inputs.input_share:.0%} input"
    )
    traffic = f"peak {inputs.peak_to_mean:.1f}x mean"
    if inputs.daily_variation is not None:
        traffic += f", day-to-day {inputs.daily_variation:.0%}"
    fields.append(f"*Traffic*\n{traffic}")
    if inputs.latency_objective_ms is not None or inputs.observed_latency_ms is not None:
        observed = (
            f"p95 {inputs.observed_latency_ms:,.0f} ms"
            if inputs.observed_latency_ms is not None
            else "not measured"
        )
        objective = (
            f" vs {inputs.latency_objective_ms:,.0f} ms objective"
            if inputs.latency_objective_ms is not None
            else ""
        )
        fields.append(f"*Latency*\n{observed}{objective}")
    if decision.hybrid_monthly is not None:
        share = decision.hybrid_bedrock_share or 0.0
        fields.append(
            f"*Hybrid*\n{_money(decision.hybrid_monthly, currency)} a month: "
            f"{decision.hybrid_instances}× {escape(decision.inputs.instance_type or '?')} for the "
            f"base load, {share:.0%} of tokens on Bedrock"
        )
    exit_text = (
        f":white_check_mark: {escape(truncate(inputs.exit_strategy, 150))}"
        if inputs.exit_strategy
        else ":x: none recorded"
    )
    fields.append(f"*Exit strategy*\n{exit_text}")
    return fields[:10]


def _criteria_section(decision: Decision, side: str, title: str) -> SectionBlock:
    lines = [title]
    for criterion in decision.criteria:
        if criterion.side == side:
            lines.append(
                f"{_check(criterion.holds)} *{escape(criterion.title)}*: "
                f"{escape_keeping_mentions(criterion.evidence)}"
            )
    return _section("\n".join(lines))


def _sensitivity(decision: Decision) -> SectionBlock | None:
    if not decision.sensitivity_volume:
        return None
    currency = decision.currency
    rows = ["volume        Bedrock    self-hosted"]
    names = {0.5: "-50%", 1.0: "as is", 1.5: "+50%"}
    for factor, bedrock, self_hosted in decision.sensitivity_volume:
        rows.append(
            f"{names.get(factor, f'x{factor}'):<13}{_money(bedrock, currency):>9}"
            f"{_money(self_hosted, currency):>15}"
        )
    rows.append("")
    rows.append("peak/mean     self-hosted  break-even")
    labels = ("halved", "as is", "doubled")
    for label, (peak, self_hosted, break_even) in zip(
        labels, decision.sensitivity_peak, strict=False
    ):
        even = f"{fmt_tokens(break_even)}/mo" if break_even is not None else "never"
        name = f"{label} {peak:.1f}"
        rows.append(f"{name:<13}{_money(self_hosted, currency):>12}{even:>12}")
    if decision.sensitivity_people:
        rows.append("")
        rows.append("engineers     self-hosted")
        for fte, total in decision.sensitivity_people:
            mark = " <" if fte == decision.inputs.fte else ""
            rows.append(f"{fte:<13g}{_money(total, currency):>12}{mark}")
    return _section("*Sensitivity*\n```" + "\n".join(rows) + "```")


def decision_blocks(decision: Decision, *, recordable: bool = True) -> list[Block]:
    inputs = decision.inputs
    subject = inputs.slug or "what-if"
    blocks: list[Block] = [
        HeaderBlock(text=truncate(f"Bedrock or self-host? · {subject}", MAX_HEADER_TEXT)),
        _section(
            f"*{TITLES[decision.recommendation]}*\n{escape_keeping_mentions(decision.summary)}"
        ),
        SectionBlock(
            fields=[MarkdownTextObject(text=truncate(f, MAX_FIELD_TEXT)) for f in _fields(decision)]
        ),
    ]
    if decision.missing:
        blocks.append(
            _section(
                "*What is missing*\n"
                + "\n".join(
                    f"• *{escape_keeping_mentions(m.what)}*: {escape_keeping_mentions(m.how)}"
                    for m in decision.missing
                )
            )
        )
    plan = decision.plan
    if plan is not None:
        blocks.append(_context(_plan_text(decision)))
    blocks += [
        DividerBlock(),
        _criteria_section(decision, "self_hosted", "*Self-host when at least one holds*"),
        _criteria_section(decision, "bedrock", "*Bedrock when*"),
    ]
    sensitivity = _sensitivity(decision)
    if sensitivity is not None:
        blocks.append(sensitivity)
    if decision.risks:
        blocks.append(
            _section(
                "*Risks*\n" + "\n".join(f"• {escape_keeping_mentions(r)}" for r in decision.risks)
            )
        )
    owners = decision.ownership
    blocks.append(
        _section(
            "*Who owns it when this scales*\n"
            f"• Cost: {escape_keeping_mentions(owners['cost'])}\n"
            f"• Control: {escape(owners['control'])}\n"
            f"• Failure: {escape(owners['failure'])}"
        )
    )
    blocks.append(_context(_provenance(decision)))
    if recordable and decision.recommendation != "insufficient_data":
        blocks.append(
            ActionsBlock(
                block_id="decide_actions",
                elements=[
                    ButtonElement(
                        text="Record decision",
                        action_id=RECORD_ACTION,
                        value=record_value(decision),
                        style="primary",
                    )
                ],
            )
        )
    return blocks


def _plan_text(decision: Decision) -> str:
    plan = decision.plan
    assert plan is not None
    text = (
        f"Self-hosted model assumed: {escape(plan.open_model)} ({plan.open_model_params_b:g}B"
        + (
            f", {plan.active_params_b:g}B active"
            if plan.active_params_b != plan.open_model_params_b
            else ""
        )
        + f", {plan.precision}, {plan.memory_gib:,.0f} GiB with KV cache): "
        f"{escape_keeping_mentions(plan.reason)}."
    )
    if plan.throughput_tokens_per_s_per_gpu is not None:
        text += (
            f" Throughput {plan.throughput_tokens_per_s_per_gpu:,.0f} output tokens/s per "
            f"{plan.gpu}: {escape_keeping_mentions(plan.throughput_basis or '')}."
        )
    if plan.purchase != "on_demand" or plan.overhead:
        text += (
            f" GPUs bought {plan.purchase.replace('_', ' ')} ({plan.purchase_discount:.0%} off), "
            f"+{plan.overhead:.0%} for storage, load balancing and orchestration."
        )
    return text


def _provenance(decision: Decision) -> str:
    inputs = decision.inputs
    sources = inputs.sources
    parts = [f"As of {decision.request.as_of:%d %b %Y}"]
    if inputs.slug:
        parts.append(f"volume {sources.get('tokens_per_month', 'default')}")
    if inputs.model:
        parts.append(
            f"Bedrock prices for `{escape(inputs.model)}` ({escape(sources.get('price_input', '?'))})"
        )
    if inputs.instance_type and inputs.instance_price is not None:
        parts.append(
            f"{escape(inputs.instance_type)} at "
            f"{fmt_money(inputs.instance_price, decision.currency, digits=2)}/h on demand "
            f"({escape(sources.get('instance_price', '?'))})"
        )
    if inputs.throughput_source:
        parts.append(f"throughput {escape(inputs.throughput_source)}")
    parts.append(f"people {escape(sources.get('ml_infra', ''))}")
    text = " · ".join(parts)
    if decision.notes:
        text += "\n" + " ".join(escape(n) for n in decision.notes)
    return text


def summary_text(decision: Decision) -> str:
    subject = decision.inputs.slug or "what-if"
    title = TITLES[decision.recommendation].split(" ", 1)[1]
    return f"{subject}: {title}. {decision.summary}"


def decide_message(decision: Decision) -> Message:
    return Message(text=summary_text(decision), blocks=tuple(decision_blocks(decision)))


def decide_error_message(message: str, example: str) -> Message:
    text = (
        f"{escape_keeping_mentions(message)}\nFor example: `{escape(example)}` · "
        "`/llm-decide help` for more."
    )
    return Message(text=text, blocks=(_section(f":warning: {text}"),))


def decide_help_message() -> Message:
    return Message(text="How to use /llm-decide", blocks=(_section(help_text()),))


def recorded_message(slug: str | None, recommendation: str, record_id: int, user: str) -> Message:
    subject = f"*{escape(slug)}*" if slug else "this what-if"
    text = (
        f":memo: Decision #{record_id} recorded for {subject}: "
        f"{TITLES[recommendation].split(' ', 1)[1]} (by <@{user}>). "
        "`/llm-owner show` lists it."
    )
    return Message(text=text, blocks=(_section(text),))


# ---- the modal ---------------------------------------------------------------------------
def decide_form(initial_slug: str | None = None) -> View:
    """The form `/llm-decide` opens with no argument (it needs no database: opens at once)."""
    blocks: list[Block] = [
        _section(
            "Name a registered workload to decide from its measured data, or describe a "
            "what-if. Anything you fill in overrides what was measured."
        )
    ]
    for key, label, placeholder, hint in FORM_FIELDS:
        blocks.append(
            InputBlock(
                block_id=key,
                label=label,
                optional=True,
                hint=hint,
                element=PlainTextInputElement(
                    action_id=INPUT_ACTION,
                    placeholder=placeholder,
                    initial_value=initial_slug if key == "slug" and initial_slug else None,
                ),
            )
        )
    blocks.append(
        InputBlock(
            block_id=FLAGS_BLOCK,
            label="What holds (unticked: as registered)",
            optional=True,
            element=CheckboxesElement(
                action_id=INPUT_ACTION,
                options=[Option(value=key, text=label) for key, label in FORM_FLAGS],
            ),
        )
    )
    view = View(
        type="modal",
        callback_id=FORM_CALLBACK,
        title=MODAL_TITLE,
        submit="Decide",
        close="Cancel",
        blocks=blocks,
    )
    validate_message(blocks, MODAL_TITLE, max_blocks=MAX_SURFACE_BLOCKS)
    return view


def form_fields(values: dict[str, dict[str, Any]]) -> tuple[dict[str, str], dict[str, str]]:
    """What a submitted form holds: each filled-in key's text (`yes` for a ticked flag, in form
    order) and the block id it came from, so each value is parsed, and any error shown, alone."""
    fields: dict[str, str] = {}
    blocks: dict[str, str] = {}
    for key, *_ in FORM_FIELDS:
        value = ((values.get(key) or {}).get(INPUT_ACTION) or {}).get("value")
        if value and value.strip():
            fields[key], blocks[key] = value.strip(), key
    selected = ((values.get(FLAGS_BLOCK) or {}).get(INPUT_ACTION) or {}).get("selected_options")
    for option in selected or []:
        key = str(option.get("value"))
        if key not in fields:  # a forged option cannot replace a typed field
            fields[key], blocks[key] = "yes", FLAGS_BLOCK
    return fields, blocks


def loading_view(text: str = "Working out the numbers…") -> View:
    return View(
        type="modal",
        callback_id=RESULT_CALLBACK,
        title=MODAL_TITLE,
        close="Close",
        blocks=[_section(f":hourglass_flowing_sand: {escape(text)}")],
    )


def decision_view(decision: Decision) -> View:
    blocks = decision_blocks(decision)
    validate_message(blocks, summary_text(decision), max_blocks=MAX_SURFACE_BLOCKS)
    return View(
        type="modal", callback_id=RESULT_CALLBACK, title=MODAL_TITLE, close="Close", blocks=blocks
    )


def message_view(message: Message, title: str = MODAL_TITLE) -> View:
    """Any answer shown in a modal (Home tab buttons have no channel to answer in)."""
    return View(
        type="modal",
        callback_id=RESULT_CALLBACK,
        title=truncate(title, 24),
        close="Close",
        blocks=list(message.blocks),
    )


__all__ = [
    "FORM_CALLBACK",
    "RECORD_ACTION",
    "RESULT_CALLBACK",
    "decide_error_message",
    "decide_form",
    "decide_help_message",
    "decide_message",
    "decision_blocks",
    "decision_view",
    "form_fields",
    "loading_view",
    "message_view",
    "recorded_message",
]

"""Block Kit for `/llm-cost`: pure functions from a `CostReport` to a `Message`.

The answer reads top to bottom: what it cost and where it is going (spend, month to date,
projection with its range, budget), how fresh the bill is, the chart, why spend changed,
the workloads ranked (for team, feature, customer and `all` scopes), open findings and
ownership gaps. Every piece of user or registry text is escaped; people are mentioned by
the Slack ids the registry resolved.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    ImageBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.models.blocks.basic_components import SlackFile

from llmgov.bot.blocks.common import (
    MAX_FIELD_TEXT,
    MAX_HEADER_TEXT,
    MAX_SECTION_TEXT,
    Message,
    and_more,
    escape,
    escape_keeping_mentions,
    money,
    person,
    split_for_limit,
    truncate,
)
from llmgov.commands.cost import HELP, CostReport, Period, WorkloadCost
from llmgov.governance.registry_view import GAP_LABELS

COST_OPEN_ACTION = "llm_cost_open"  # value: the /llm-cost text to answer ("slug 30d")
DECIDE_OPEN_ACTION = "llm_decide_open"  # value: a workload slug
MAX_WORKLOAD_ROWS = 10
MAX_FINDINGS = 5
MAX_GAPS = 8
SEVERITY_ICONS = {
    "critical": ":red_circle:",
    "warning": ":large_orange_circle:",
    "info": ":white_circle:",
}
EFFECT_LABELS = {
    "volume": "Volume (successful requests)",
    "retries": "Retries and failed calls",
    "intensity": "Tokens per call",
    "price_mix": "Price and model mix",
    "unexplained": "Not split (no usage metrics for both periods)",
    "other_workloads": "Everything else (smaller workloads, unattributed)",
}


# ---- small formatters --------------------------------------------------------------------
def day(value: date) -> str:
    return f"{value.day} {value:%b}"


def day_range(start: date, end: date) -> str:
    if start == end:
        return day(start)
    if start.year != end.year:
        return f"{day(start)} {start.year} – {day(end)} {end.year}"
    return f"{day(start)} – {day(end)}"


def period_phrase(period: Period) -> str:
    if period.label == "mtd":
        return "month to date"
    if period.label == "last-month":
        return f"last month ({period.start:%B %Y})"
    if period.label.endswith("d") and period.label[:-1].isdigit():
        return "today" if period.days == 1 else f"last {period.days} days"
    return f"{period.start:%B %Y}"


def signed_money(amount: Decimal, currency: str) -> str:
    text = money(amount, currency)
    return f"+{text}" if amount > 0 else text


def unit_money(amount: Decimal | None, currency: str) -> str:
    """Unit costs are often fractions of a cent: four significant decimals."""
    if amount is None:
        return "—"
    value = float(amount)
    symbol = {"USD": "$", "EUR": "€", "GBP": "£"}.get(currency, "")
    number = f"{value:,.2f}" if value >= 1 else f"{value:.4f}"
    return f"{symbol}{number}" if symbol else f"{number} {currency}"


def _section(text: str, accessory=None) -> SectionBlock:
    return SectionBlock(
        text=MarkdownTextObject(text=truncate(text, MAX_SECTION_TEXT)), accessory=accessory
    )


def _fields(items: list[str]) -> SectionBlock:
    return SectionBlock(
        fields=[MarkdownTextObject(text=truncate(item, MAX_FIELD_TEXT)) for item in items[:10]]
    )


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=truncate(text, MAX_FIELD_TEXT))])


def projection_text(point: Decimal, low: Decimal, high: Decimal, currency: str) -> str:
    return f"{money(point.quantize(Decimal(1)), currency)} ({money(low.quantize(Decimal(1)), currency)}–{money(high.quantize(Decimal(1)), currency)})"


def budget_text(report: CostReport) -> str:
    currency = report.currency
    if report.budget is None:
        if report.budgeted_workloads and len(report.workloads) > 1:
            return "per workload (see below)"
        return "none set · `/llm-owner budget SLUG AMOUNT`"
    budget = money(report.budget, currency)
    status = report.budget_status
    when = report.budget_exhausted_on
    if status == "unknown":  # the one rule says so when the data is stale
        return f":white_circle: {budget} · unknown (data is missing)"
    if status == "exceeded":
        return f":red_circle: {budget} · exceeded" + (f" on {day(when)}" if when else "")
    if status == "projected_overrun":
        return f":large_orange_circle: {budget} · runs out " + (day(when) if when else "this month")
    if status == "at_risk":
        earliest = report.budget_exhausted_earliest
        return f":large_yellow_circle: {budget} · at risk" + (
            f" (as early as {day(earliest)})" if earliest else ""
        )
    return f":large_green_circle: {budget} · on track"


# ---- the answer --------------------------------------------------------------------------
def _summary_fields(report: CostReport) -> list[str]:
    currency = report.currency
    phrase = period_phrase(report.period)
    spend = f"*Spend, {phrase}*\n{money(report.total, currency)}"
    change = report.change
    if change is not None and change.previous:
        arrow = ":arrow_up_small:" if change.delta > 0 else ":arrow_down_small:"
        spend += f" {arrow} {change.percent:+.0f}% vs the period before"
    month = money(report.month_to_date, currency)
    if report.stale and not report.month_to_date:  # what is missing is not $0
        month = "no data yet (the billing data stops before this month)"
    elif report.stale:
        month += " in the days with data (later days missing)"
    fields = [spend, f"*Month to date*\n{month}"]
    if report.projection is not None:
        p = report.projection
        fields.append(f"*Projected month end*\n{projection_text(p.point, p.low, p.high, currency)}")
    fields.append(f"*Budget*\n{budget_text(report)}")
    single = report.single
    if single is not None:
        info = single.workload
        owner = (
            person(info.owner_id, info.owner_label, active=info.owner_active)
            if info.owner_label
            else ":warning: nobody"
        )
        backup = f" · backup {person(info.backup_owner_id, None)}" if info.backup_owner_id else ""
        fields.append(f"*Owner*\n{owner}{backup}")
        if info.team:
            fields.append(f"*Team*\n{escape(info.team)}")
    elif report.request.scope.kind != "workload":
        fields.append(f"*Unattributed*\n{money(report.unattributed, currency)} (whole org)")
    unit = report.unit
    if unit is not None and unit.tokens:
        since = f" since {day(unit.since)}" if unit.since else ""
        text = f"*Unit cost{since}*\n{unit_money(unit.per_1k_tokens, currency)} per 1K tokens"
        if unit.requests:
            text += f" · {unit_money(unit.per_request, currency)} per call"
        if unit.upstream_requests:
            text += f" · {unit_money(unit.per_upstream_request, currency)} per request"
        fields.append(text)
    return fields


def _billing_line(report: CostReport) -> str | None:
    billing = report.billing
    parts = []
    if billing.billed_through is not None and billing.estimated_days and report.stale:
        parts.append(f"Billed through *{day(billing.billed_through)}*; no data since")
    elif billing.billed_through is not None and billing.estimated_days:
        first = billing.billed_through.toordinal() + 1
        lag_start = date.fromordinal(max(first, report.period.start.toordinal()))
        parts.append(
            f"Billed through *{day(billing.billed_through)}*; "
            f"{day_range(lag_start, report.period.end)} ({money(billing.estimated, report.currency)})"
            " estimated from tokens"
        )
    drift = billing.drift_percent
    if drift is not None and billing.drift_window is not None:
        sample = (
            f" (top {billing.drift_sample} workloads)" if billing.drift_sample is not None else ""
        )
        parts.append(
            f"token estimates ran *{drift:+.1f}%* vs the bill over "
            f"{day_range(*billing.drift_window)}{sample}"
        )
    return " · ".join(parts) if parts else None


def _change_section(report: CostReport) -> SectionBlock | None:
    change = report.change
    if change is None or not change.delta:
        return None
    currency = report.currency
    percent = f" ({change.percent:+.0f}%)" if change.percent is not None else ""
    lines = [
        f"*Why it changed* · {signed_money(change.delta, currency)}{percent} vs "
        f"{day_range(change.previous_period.start, change.previous_period.end)}"
    ]
    for effect in sorted(change.effects, key=lambda e: -abs(e.amount)):
        label = EFFECT_LABELS.get(effect.name, effect.name)
        lines.append(f"• {label}: {signed_money(effect.amount, currency)}")
    if len(report.workloads) > 1 and change.movers:
        movers = ", ".join(
            f"`{escape(slug)}` {signed_money(delta, currency)}" for slug, delta in change.movers[:3]
        )
        among = f" among the top {change.movers_among}" if change.movers_among else ""
        lines.append(f"Biggest movers{among}: {movers}")
    return _section("\n".join(lines))


def workload_line(
    row: WorkloadCost, currency: str, period: Period, *, with_total: bool = True
) -> str:
    """One workload: owner, team, spend, month to date, projection against its budget,
    open alerts and gaps. `with_total` False leaves out the period's spend (the Home tab,
    where the period is the month)."""
    info = row.workload
    owner = (
        person(info.owner_id, info.owner_label, active=info.owner_active)
        if info.owner_label
        else "_no owner_"
    )
    head = f"*{escape(info.slug)}* · {owner}" + (f" · {escape(info.team)}" if info.team else "")
    facts = [f"MTD {money(row.month_to_date, currency)}"]
    if with_total:
        facts.insert(0, f"{money(row.total, currency)} {period_phrase(period)}")
    projection = row.projected_month_end
    if projection is not None:
        text = f"month end {projection_text(projection.point, projection.low, projection.high, currency)}"
        if info.budget is not None:
            text += f" of {money(info.budget, currency)}"
            if row.budget_exhausted_on is not None:
                text += f" :warning: runs out {day(row.budget_exhausted_on)}"
        facts.append(text)
    elif info.budget is not None:
        facts.append(f"budget {money(info.budget, currency)}")
    if row.open_alerts:
        facts.append(f"{row.open_alerts} open alert{'s' if row.open_alerts > 1 else ''}")
    gaps = row.workload.gaps()
    tail = f"\n_{', '.join(GAP_LABELS[g] for g in gaps)}_" if gaps else ""
    return f"{head}\n{' · '.join(facts)}{tail}"


def _workload_blocks(report: CostReport) -> list[Block]:
    rows = [r for r in report.workloads if r.total or r.month_to_date or r.open_alerts]
    if not rows:
        return []
    blocks: list[Block] = [
        _section(f"*Workloads* ({len(rows)}, by spend {period_phrase(report.period)})")
    ]
    shown, hidden = split_for_limit(rows, MAX_WORKLOAD_ROWS)
    for row in shown:
        button = ButtonElement(
            text="Details",
            action_id=COST_OPEN_ACTION,
            value=f"{row.workload.slug} {report.period.label}",
        )
        blocks.append(_section(workload_line(row, report.currency, report.period), button))
    if hidden:
        blocks.append(
            and_more(hidden, "Narrow with `team:X`, or `llmgov cost --format csv` for all.")
        )
    return blocks


def _findings_section(report: CostReport) -> SectionBlock | None:
    if not report.findings:
        return None
    lines = [f"*Open findings* ({report.findings_total})"]
    for finding in report.findings[:MAX_FINDINGS]:
        icon = SEVERITY_ICONS.get(finding.severity, "")
        where = f" · `{escape(finding.workload)}`" if finding.workload else ""
        lines.append(
            f"{icon} {escape(finding.kind.replace('_', ' '))}{where}: "
            f"{escape(truncate(finding.message, 300))}"  # names in it are outside text
        )
    hidden = report.findings_total - min(len(report.findings), MAX_FINDINGS)
    if hidden > 0:
        lines.append(f"…and {hidden} more. `llmgov check --dry-run` lists them all.")
    return _section("\n".join(lines))


def _gaps_section(report: CostReport) -> SectionBlock | None:
    gaps = report.gaps
    if not gaps:
        return None
    lines = ["*Ownership gaps*"]
    shown, hidden = split_for_limit(gaps, MAX_GAPS)
    for info, found in shown:
        labels = ", ".join(GAP_LABELS[g] for g in found)
        claim = (
            f" · `/llm-owner claim {escape(info.slug)}`"
            if not info.owner_label or not info.owner_active
            else ""
        )
        lines.append(f"• `{escape(info.slug)}`: {labels}{claim}")
    if hidden:
        lines.append(f"…and {hidden} more. `/llm-owner gaps` lists them all.")
    return _section("\n".join(lines))


def summary_text(report: CostReport) -> str:
    """The notification / accessibility fallback: one line."""
    currency = report.currency
    # the scope label is what was typed (a feature, a customer, a person's name): outside text
    scope = escape(report.scope_label)
    text = f"{scope}: {money(report.total, currency)} {period_phrase(report.period)}"
    if report.period.label != "mtd":
        text += f", {money(report.month_to_date, currency)} month to date"
    if report.projection is not None:
        p = report.projection
        text += f", month end {projection_text(p.point, p.low, p.high, currency)}"
    if report.budget is not None:
        status = report.budget_status
        text += f", budget {money(report.budget, currency)} ({status.replace('_', ' ')})"
    if report.data_warning:
        text = f"{report.data_warning}. {text}"
    return text + "."


def chart_block(file_id: str, report: CostReport) -> ImageBlock:
    return ImageBlock(
        slack_file=SlackFile(id=file_id),
        alt_text=truncate(f"Daily spend and month-end projection: {summary_text(report)}", 2000),
    )


def cost_message(
    report: CostReport, *, chart_file_id: str | None = None, chart_note: str | None = None
) -> Message:
    """The `/llm-cost` answer. `chart_file_id`: the uploaded chart to show; `chart_note`:
    why there is no chart (e.g. the bot is not in the channel)."""
    if not report.workloads and report.request.scope.kind == "mine":
        return empty_scope_message()
    header = f"LLM spend · {report.scope_label} · {period_phrase(report.period)}"
    blocks: list[Block] = [HeaderBlock(text=truncate(header, MAX_HEADER_TEXT))]
    if report.data_warning:
        blocks.append(
            _section(
                f":warning: *{escape(report.data_warning)}*: days after it are missing, "
                "not $0; no trend or budget status is given on them."
            )
        )
    blocks.append(_fields(_summary_fields(report)))
    billing = _billing_line(report)
    if billing:
        blocks.append(_context(billing))
    if chart_file_id:
        blocks.append(chart_block(chart_file_id, report))
    elif chart_note:
        blocks.append(_context(f":bar_chart: {chart_note}"))
    change = _change_section(report)
    if change is not None:
        blocks.append(change)
    if report.request.scope.kind != "workload":
        workload_blocks = _workload_blocks(report)
        if workload_blocks:
            blocks += [DividerBlock(), *workload_blocks]
    for section in (_findings_section(report), _gaps_section(report)):
        if section is not None:
            blocks += [DividerBlock(), section]
    if report.notes:
        blocks.append(_context(" ".join(escape(note) for note in report.notes)))
    single = report.single
    if single is not None:
        blocks.append(
            ActionsBlock(
                elements=[
                    ButtonElement(
                        text="Bedrock or self-host?",
                        action_id=DECIDE_OPEN_ACTION,
                        value=single.workload.slug,
                    ),
                    ButtonElement(
                        text="Last 90 days",
                        action_id=COST_OPEN_ACTION,
                        value=f"{single.workload.slug} 90d",
                    ),
                ]
            )
        )
    return Message(text=summary_text(report), blocks=tuple(blocks))


def empty_scope_message() -> Message:
    text = (
        "You own no workloads yet. Try `/llm-cost team:search` or `/llm-cost all`, or claim "
        "one with `/llm-owner claim SLUG` (`/llm-owner gaps` lists the unowned ones)."
    )
    return Message(text=text, blocks=(_section(text),))


def cost_error_message(message: str, example: str) -> Message:
    """A parse error: what was wrong (user text escaped) and one correct example."""
    text = f"{escape_keeping_mentions(message)}\nFor example: `{escape(example)}` · `/llm-cost help` for more."
    return Message(text=text, blocks=(_section(f":warning: {text}"),))


def cost_help_message() -> Message:
    return Message(text="How to use /llm-cost", blocks=(_section(HELP),))


__all__ = [
    "COST_OPEN_ACTION",
    "DECIDE_OPEN_ACTION",
    "chart_block",
    "cost_error_message",
    "cost_help_message",
    "cost_message",
    "empty_scope_message",
    "summary_text",
    "workload_line",
]

"""The governance loop of `llmgov demo`, on the bundled sample: collect, check, digest, gap
review, and the two slash commands, each printed as its own section.

Everything below `bot/` is called exactly as the scheduler and Slack call it: the billing
import and the `sample` collector write facts and attribute them; the checks, the digest and
the gap review run as dry runs (`run_checks(..., dry_run=True)`: nothing saved, nothing
sent) and print what would be posted; `/llm-cost` and `/llm-decide` are answered by the
Slack listeners' own functions, rendered as `llmgov ask` renders them.
"""

from __future__ import annotations

import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from llmgov.bot.blocks.common import blocks_to_text, money
from llmgov.bot.cli.ask import ANONYMOUS
from llmgov.bot.demo.context import DemoRun, day_text
from llmgov.bot.listeners.commands.llm_cost import cost_answer
from llmgov.bot.listeners.commands.llm_decide import decide_answer
from llmgov.bot.listeners.deps import AppDeps
from llmgov.bot.notify import Outgoing, run_checks, send_digests, send_gap_review
from llmgov.collectors import sample_data
from llmgov.collectors.billing_files import import_billing
from llmgov.collectors.prices import PriceBook
from llmgov.collectors.run import collect
from llmgov.governance import outbox
from llmgov.governance.findings import Finding
from llmgov.models.base import transaction
from llmgov.models.errors import SourceError
from llmgov.models.facts import CostFact, GpuFact, UpstreamFact, UsageFact
from llmgov.models.ledger import billed_usage, counted_usage
from llmgov.models.registry import AttributionRule, Person, SourceSetting, Workload

DIGEST_OWNER = "U0CHL0003"  # Chloé Martin: her support assistant is heading over budget
DECIDE_WORKLOAD = "support-assistant"  # the sample's biggest Bedrock workload
ALERTS_SHOWN_IN_FULL = 2


# ---- 1. collect ----------------------------------------------------------------------------


def collect_sample(demo: DemoRun) -> None:
    """Import the sample billing export, then collect the sample usage, as `llmgov
    import-billing` and `llmgov collect --source sample` do. For another `--as-of` than the
    bundled sample's last day, the same synthetic sample is generated to end on that day."""
    with tempfile.TemporaryDirectory(prefix="llmgov-demo-") as scratch:
        bill = sample_data.DATA_DIR / sample_data.FOCUS_FILE
        if demo.as_of != sample_data.SAMPLE_END:
            bill = Path(scratch) / sample_data.FOCUS_FILE
            sample_data.write_focus(bill, sample_data.generate(end=demo.as_of))
            with transaction(demo.session_factory) as session:
                _sample_source(session).config = {"end": demo.as_of.isoformat()}
        demo.billing = import_billing(
            demo.session_factory, [bill], now=demo.clock, tag_key=sample_data.TAG_KEY
        )
    # The price book without $LLMGOV_PRICE_OVERRIDES: the sample's bill was priced with it.
    demo.collection = collect(
        demo.session_factory,
        demo.clock,
        sources=["sample"],
        prices=PriceBook(today=demo.as_of),
    )
    failed = [result.error for result in demo.collection.results if not result.ok]
    if failed:
        raise SourceError("collecting the sample failed: " + "; ".join(map(str, failed)))


def _sample_source(session: Session) -> SourceSetting:
    setting = session.scalar(select(SourceSetting).where(SourceSetting.name == "sample"))
    if setting is None:  # the demo registry declares it; a trimmed registry may not
        setting = SourceSetting(name="sample", config={})
        session.add(setting)
    return setting


def show_collected(demo: DemoRun) -> None:
    """What the collectors wrote, and whom each dollar was attributed to."""
    billing = demo.billing
    assert billing is not None and demo.collection is not None, "collect_sample runs first"
    first, last = billing.first_day, billing.last_day
    span = f"{day_text(first)} – {day_text(last)}" if first and last else "no days"
    demo.heading(f"Collected: the sample's {span} (no AWS)")
    currency = billing.currency or "USD"

    demo.say(
        f"Billing export ({billing.format.upper()}) {sample_data.FOCUS_FILE}: "
        f"{billing.rows:,} rows, {billing.llm_rows:,} of them LLM, into "
        f"{billing.facts:,} daily cost facts"
    )
    services = sorted(billing.by_service.items(), key=lambda item: (-item[1], item[0]))
    demo.table(
        ("SERVICE", "COST"),
        [
            *((name, money(_cents(cost), currency)) for name, cost in services),
            ("total", money(_cents(billing.total_cost), currency)),
        ],
        right=(1,),
    )

    with demo.session_factory() as session:
        counts = _usage_counts(session)
        demo.say()
        demo.say(
            f"Usage (CloudWatch-like, hourly): {counts['usage']:,} Bedrock usage rows over "
            f"{counts['models']} model series, {counts['gpu']:,} GPU instance-hours on "
            f"{counts['instances']} instances, {counts['upstream']:,} upstream request counts"
        )
        attributed_series, unattributed_series = _usage_series(session)
        total_series = attributed_series + len(unattributed_series)
        demo.say(f"Usage series attributed to workloads: {attributed_series} of {total_series}")
        for account, model in unattributed_series:
            demo.say(f"  unattributed: {model} in account {account} (no rule matches)")

        demo.say()
        demo.say(f"Who the spend belongs to ({span}), by the registry's match rules:")
        claims = _spend_by_claim(session, first, last)
        rows = [
            (slug, owner, claimed_by, money(_cents(amount), currency))
            for slug, owner, claimed_by, amount in claims.workloads
        ]
        if claims.unclaimed:
            rows.append(
                ("(unattributed)", "—", "no rule", money(_cents(claims.unattributed), currency))
            )
        demo.table(("WORKLOAD", "OWNER", "CLAIMED BY", "SPEND"), rows, right=(3,))
        total = claims.attributed + claims.unattributed
        share = f" ({claims.unattributed / total:.1%} of the spend)" if total else ""
        demo.say(
            f"Unattributed: {money(_cents(claims.unattributed), currency)}{share}, shown as "
            "such, never dropped:"
        )
        for account, service, amount in claims.unclaimed:
            demo.say(
                f"  {service} in account {account}: {money(_cents(amount), currency)}, untagged"
            )
        discovered = _discovered(session, billing.attribution.discovered)
    if discovered:
        demo.say()
        demo.say("Discovered in the bill (spend no rule claimed, with a workload-like key):")
        for slug, source in discovered:
            demo.say(f"  {slug}: from {source}; now a workload with no owner (an ownership gap)")


def _usage_counts(session: Session) -> dict[str, int]:
    """Rows the `sample` collector wrote, and the series and instances they cover."""
    sample = sample_data.SOURCE

    def count(what, model) -> int:
        return int(
            session.scalar(select(what).select_from(model).where(model.source == sample)) or 0
        )

    return {
        "usage": count(func.count(), UsageFact),
        "models": count(func.count(func.distinct(UsageFact.series_key)), UsageFact),
        "gpu": count(func.count(), GpuFact),
        "instances": count(func.count(func.distinct(GpuFact.resource_id)), GpuFact),
        "upstream": count(func.count(), UpstreamFact),
    }


def _usage_series(session: Session) -> tuple[int, list[tuple[str, str]]]:
    """How many sample usage series a rule claims, and (account, model) of the others."""
    series = session.execute(
        select(
            UsageFact.series_key,
            UsageFact.account,
            UsageFact.model_id,
            func.max(UsageFact.workload_id),
        )
        .where(UsageFact.source == sample_data.SOURCE)
        .group_by(UsageFact.series_key, UsageFact.account, UsageFact.model_id)
    ).all()
    unattributed = sorted(
        (account or "?", model or "?") for _, account, model, workload in series if workload is None
    )
    return len(series) - len(unattributed), unattributed


@dataclass
class SpendClaims:
    """Spend in a window by workload (owner, the rule kinds that claimed it) and the spend no
    rule claims, by account and service."""

    workloads: list[tuple[str, str, str, Decimal]]  # slug, owner, claimed by, amount
    unclaimed: list[tuple[str, str, Decimal]]  # account, service, amount

    @property
    def attributed(self) -> Decimal:
        return sum((amount for *_, amount in self.workloads), Decimal(0))

    @property
    def unattributed(self) -> Decimal:
        return sum((amount for *_, amount in self.unclaimed), Decimal(0))


def _spend_by_claim(session: Session, first: date | None, last: date | None) -> SpendClaims:
    in_window = [CostFact.day >= first, CostFact.day <= last] if first and last else []
    in_window.append(counted_usage())
    claimed = session.execute(
        select(
            Workload.slug,
            Person.name,
            Person.active,
            AttributionRule.kind,
            func.sum(CostFact.cost),
        )
        .select_from(CostFact)
        .join(Workload, CostFact.workload_id == Workload.id)
        .outerjoin(Person, Workload.owner_id == Person.id)
        .outerjoin(AttributionRule, CostFact.rule_id == AttributionRule.id)
        .where(*in_window)
        .group_by(Workload.slug, Person.name, Person.active, AttributionRule.kind)
    ).all()
    owners: dict[str, str] = {}
    kinds: dict[str, set[str]] = defaultdict(set)
    amounts: dict[str, Decimal] = defaultdict(Decimal)
    for slug, name, active, kind, total in claimed:
        owners[slug] = "no owner" if name is None else name if active else f"{name} (left)"
        kinds[slug].add(kind or "?")
        amounts[slug] += Decimal(str(total or 0))
    unclaimed = session.execute(
        select(CostFact.account, CostFact.service, func.sum(CostFact.cost))
        .where(CostFact.workload_id.is_(None), billed_usage(), *in_window)
        .group_by(CostFact.account, CostFact.service)
    ).all()
    return SpendClaims(
        workloads=sorted(
            (
                (slug, owners[slug], " + ".join(sorted(kinds[slug])) + " rule", amounts[slug])
                for slug in owners
            ),
            key=lambda row: (-row[3], row[0]),
        ),
        unclaimed=sorted(
            (
                (account or "?", service or "?", Decimal(str(total or 0)))
                for account, service, total in unclaimed
            ),
            key=lambda row: (-row[2], row[0], row[1]),
        ),
    )


def _discovered(session: Session, slugs: list[str]) -> list[tuple[str, str]]:
    if not slugs:
        return []
    found = dict(
        session.execute(
            select(Workload.slug, Workload.discovered_from).where(Workload.slug.in_(slugs))
        ).all()
    )
    return [(slug, found.get(slug) or "the bill") for slug in slugs]


def _cents(amount: Decimal) -> Decimal:
    return Decimal(amount).quantize(Decimal("0.01"))


# ---- 2. check ------------------------------------------------------------------------------


def show_checks(demo: DemoRun) -> None:
    """The checks as of the demo's day, and the alerts they would post (a dry run)."""
    run = run_checks(
        demo.session_factory, demo.settings, demo.clock, dry_run=True, as_of=demo.as_of
    )
    posts = [message for message in run.messages if message.method == outbox.POST]
    demo.heading(
        f"Checks as of {day_text(demo.as_of)}: {len(run.findings)} findings, "
        f"{len(posts)} alerts would be posted"
    )
    findings = {finding.fingerprint: finding for finding in run.findings}
    by_alert = {change["alert_id"]: findings.get(change["fingerprint"]) for change in run.changes}
    with demo.session_factory() as session:
        names = {
            slack_id: name if active else f"{name} (left)"
            for slack_id, name, active in session.execute(
                select(Person.slack_id, Person.name, Person.active).where(
                    Person.slack_id.is_not(None), Person.name.is_not(None)
                )
            )
        }
    rows = []
    posted: set[str] = set()
    for message in posts:
        finding = by_alert.get(message.alert_id)
        if finding is None:  # pragma: no cover - every post belongs to an alert of this run
            continue
        posted.add(finding.fingerprint)
        rows.append(
            (
                finding.severity,
                finding.kind,
                finding.workload or finding.team or "—",
                _owner(finding, names),
                money(finding.amount, finding.currency),
                _channel(message.channel),
            )
        )
    demo.say("A dry run: nothing is saved and nothing is sent; this is what would be posted.")
    demo.table(
        ("SEVERITY", "FINDING", "WORKLOAD", "OWNER", "AT STAKE", "POSTED TO"), rows, right=(4,)
    )
    quiet = Counter(f.kind for f in run.findings if f.fingerprint not in posted)
    if quiet:
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(quiet.items()))
        demo.say(
            f"Not posted ({sum(quiet.values())}, below the posting severity): {kinds}; "
            "digests and the gap review list them."
        )
    for message in posts[:ALERTS_SHOWN_IN_FULL]:
        demo.say()
        demo.say(f"--- as posted in {_channel(message.channel)}:")
        _preview(demo, message)


def _owner(finding: Finding, names: dict[str, str | None]) -> str:
    if finding.owner is None:
        return "unowned"
    name = names.get(finding.owner)
    return f"@{finding.owner} {name}" if name else f"@{finding.owner}"


def _channel(channel: str | None) -> str:
    """`#C0SUPPORT1`; the governance channel, which the demo leaves unset, by its variable."""
    if channel and channel[:1] in ("C", "G") and channel.isalnum():
        return f"#{channel}"
    return "governance channel ($LLMGOV_CHANNEL)" if channel and channel.startswith("(") else "—"


def _preview(demo: DemoRun, message: Outgoing) -> None:
    for line in message.preview().rstrip().splitlines():
        demo.say(f"  {line}" if line else "")


# ---- 3. digest and gap review --------------------------------------------------------------


def show_digest(demo: DemoRun) -> None:
    """One owner's weekly digest, as the DM would read."""
    run = send_digests(
        demo.session_factory,
        demo.settings,
        demo.clock,
        owner=DIGEST_OWNER,
        dry_run=True,
        as_of=demo.as_of,
    )
    digest = run.digests[0] if run.digests else None
    who = f"{digest.owner_name} (@{digest.owner})" if digest else f"@{DIGEST_OWNER}"
    demo.heading(f"Weekly digest: the DM {who} gets")
    if not run.messages:
        demo.say(f"{who} owns no workloads with anything to report.")
    for message in run.messages:
        _preview(demo, message)


def show_gap_review(demo: DemoRun) -> None:
    """The weekly ownership-gap review, ranked by money at stake."""
    run = send_gap_review(
        demo.session_factory, demo.settings, demo.clock, dry_run=True, as_of=demo.as_of
    )
    demo.heading("Ownership-gap review: what leadership sees in the governance channel weekly")
    for message in run.messages:
        _preview(demo, message)


# ---- 4. the slash commands -----------------------------------------------------------------


def show_commands(demo: DemoRun) -> None:
    """`/llm-cost all` and `/llm-decide` for one workload, through the Slack listeners' code."""
    deps = AppDeps.build(demo.settings, demo.session_factory)
    demo.heading(f'/llm-cost all (as of {day_text(demo.as_of)}; `llmgov ask "/llm-cost all"`)')
    message, _ = cost_answer(deps, "all", ANONYMOUS, today=demo.as_of)
    _print_blocks(demo, message.blocks)
    demo.heading(f"/llm-decide {DECIDE_WORKLOAD} (Bedrock, self-host or hybrid?)")
    message, _ = decide_answer(deps, DECIDE_WORKLOAD, today=demo.as_of)
    _print_blocks(demo, message.blocks)


def _print_blocks(demo: DemoRun, blocks) -> None:
    for line in blocks_to_text(blocks).rstrip().splitlines():
        demo.say(f"  {line}" if line else "")


__all__ = [
    "DECIDE_WORKLOAD",
    "DIGEST_OWNER",
    "collect_sample",
    "show_checks",
    "show_collected",
    "show_commands",
    "show_digest",
    "show_gap_review",
]

"""Run every configured collector once: `collect(session_factory, now, sources, since)`.

Each (source, account, region) — or (source, URL) — is one scope: fetched first (no database
lock held while AWS answers), then written in its own transaction together with its
SourceStatus success. A failing scope rolls back alone, records its error, and the others
carry on. After the scopes: prices used, the attribution pass (with discovery) and the tally
of AWS requests (with Cost Explorer's $0.01 each) are written.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from llmgov.aws.clients import (
    COST_EXPLORER_REGION,
    PRICING_REGION,
    AwsClients,
    AwsSettings,
    describe_aws_error,
    load_aws_settings,
)
from llmgov.collectors import (
    bedrock_cloudwatch,
    cost_explorer,
    gpu_cloudwatch,
    prometheus,
    sample_data,
    upstream,
)
from llmgov.collectors.attribution import AttributionSummary, attribute_facts
from llmgov.collectors.cloudwatch import hour_window
from llmgov.collectors.prices import PriceBook, gpu_table, record_gpu_prices, refresh_gpu_prices
from llmgov.collectors.status import last_success, record_error, record_success
from llmgov.collectors.upserts import upsert_facts
from llmgov.models.base import transaction
from llmgov.models.errors import BadInput, SourceError
from llmgov.models.facts import GpuFact, UsageFact
from llmgov.models.planner_stats import refresh_after_writing
from llmgov.models.registry import SourceSetting, Workload

AWS_SOURCES = ("bedrock_cloudwatch", "cost_explorer", "gpu_cloudwatch", "upstream")
ALL_SOURCES = (*AWS_SOURCES, "prometheus", "gpu_prices", "sample")
PROMETHEUS_LOOKBACK_HOURS = 48


@dataclass
class ScopeResult:
    source: str
    scope: str
    ok: bool
    rows: int = 0
    error: str | None = None


@dataclass
class CollectReport:
    run_id: str
    started_at: datetime
    results: list[ScopeResult] = field(default_factory=list)
    attribution: AttributionSummary = field(default_factory=AttributionSummary)
    api_calls: dict[str, int] = field(default_factory=dict)
    api_cost: Decimal = Decimal(0)
    prices_missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(result.ok for result in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started_at": self.started_at.isoformat(),
            "ok": self.ok,
            "results": [result.__dict__ for result in self.results],
            "attribution": {
                "series": self.attribution.series,
                "attributed": self.attribution.attributed,
                "unattributed": self.attribution.unattributed,
                "discovered": self.attribution.discovered,
            },
            "api_calls": self.api_calls,
            "api_cost": str(self.api_cost),
            "prices_missing": self.prices_missing,
        }


@dataclass
class Context:
    """What one run shares between its scopes."""

    session_factory: sessionmaker[Session]
    now: datetime
    since: date | None
    report: CollectReport
    prices: PriceBook
    aws: AwsClients | None = None
    fetch: prometheus.Fetch | None = None
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def since_datetime(self) -> datetime | None:
        return datetime.combine(self.since, time.min, UTC) if self.since else None


def collect(
    session_factory: sessionmaker[Session],
    now: datetime,
    sources: Iterable[str] | None = None,
    since: date | None = None,
    *,
    aws: AwsClients | None = None,
    fetch: prometheus.Fetch | None = None,
    prices: PriceBook | None = None,
) -> CollectReport:
    """Run the collectors once. `sources` None = every configured source.

    `aws` and `fetch` replace the AWS client factory and the Prometheus HTTP fetch (tests,
    benchmarks); `prices` replaces the price book (override file from $LLMGOV_PRICE_OVERRIDES).
    """
    now = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
    report = CollectReport(run_id=uuid.uuid4().hex, started_at=now)
    with session_factory() as session:
        settings = {
            row.name: dict(row.config or {}) for row in session.scalars(select(SourceSetting))
        }
    chosen = _choose_sources(sources, settings)
    context = Context(
        session_factory=session_factory,
        now=now,
        since=since,
        report=report,
        prices=prices or PriceBook.load(today=now.date()),
        fetch=fetch,
        settings=settings,
    )
    aws_settings: AwsSettings | None = None
    if any(source in AWS_SOURCES or source == "gpu_prices" for source in chosen):
        with session_factory() as session:
            aws_settings = (
                (aws.settings if aws else None) or load_aws_settings(session) or AwsSettings()
            )
        context.aws = aws or AwsClients(aws_settings)
    for source in chosen:
        RUNNERS[source](context)
    _finish(context, aws_settings)
    return report


def configured_sources(session_factory: sessionmaker[Session]) -> list[str]:
    """The sources the registry configures: what `collect` runs when no source is named
    (empty when none is configured)."""
    with session_factory() as session:
        rows = session.scalars(select(SourceSetting))
        settings = {row.name: dict(row.config or {}) for row in rows}
    try:
        return _choose_sources(None, settings)
    except BadInput:  # no source configured at all
        return []


def _choose_sources(
    sources: Iterable[str] | None, settings: dict[str, dict[str, Any]]
) -> list[str]:
    if sources is not None:
        chosen = list(dict.fromkeys(sources))
        unknown = [name for name in chosen if name not in ALL_SOURCES]
        if unknown:
            raise BadInput(
                f"unknown source(s) {', '.join(unknown)}; known sources: {', '.join(ALL_SOURCES)}"
            )
        return chosen
    chosen = []
    if "aws" in settings:
        chosen += list(AWS_SOURCES)
    if "prometheus" in settings:
        chosen.append("prometheus")
    if "sample" in settings:
        chosen.append("sample")
    if not chosen:
        raise BadInput(
            "no sources configured: add a `sources:` section (aws, prometheus) to the registry "
            "file and import it, or run `llmgov collect --source sample` for the demo data"
        )
    return chosen


def run_scope(
    context: Context, source: str, scope: str, work: Callable[[], Callable[[Session], int]]
) -> None:
    """Fetch (`work`), then write (what `work` returns) and the success in one transaction."""
    try:
        write = work()
        with transaction(context.session_factory) as session:
            rows = write(session)
            record_success(session, source, scope, context.now, rows)
        context.report.results.append(ScopeResult(source, scope, True, rows))
    except Exception as error:  # one scope's failure must not stop the others
        message = _describe(error, f"{source} {scope}")
        with transaction(context.session_factory) as session:
            record_error(session, source, scope, context.now, message)
        context.report.results.append(ScopeResult(source, scope, False, 0, message))


def _describe(error: BaseException, what: str) -> str:
    if isinstance(error, BadInput | SourceError):
        return f"{what}: {error}"
    return describe_aws_error(error, what=what)


def _aws_scopes(context: Context) -> list[tuple[Any, str]]:
    assert context.aws is not None
    return context.aws.settings.scopes()


def _account_id(context: Context, account) -> str:
    assert context.aws is not None
    return context.aws.account_id(account)


def _run_bedrock(context: Context) -> None:
    aws = context.aws
    assert aws is not None
    start, end = hour_window(context.now, aws.settings.lookback_hours, context.since_datetime)
    for account, region in _aws_scopes(context):

        def work(account=account, region=region):
            account_id = _account_id(context, account)
            rows = bedrock_cloudwatch.collect(
                aws.client("cloudwatch", account, region),
                account=account_id,
                region=region,
                start=start,
                end=end,
                prices=context.prices,
                now=context.now,
                latency_p95=aws.settings.latency_p95,
            )
            return lambda session: upsert_facts(session, UsageFact, rows)

        run_scope(context, "bedrock_cloudwatch", f"{account.label}/{region}", work)


def _run_cost_explorer(context: Context) -> None:
    aws = context.aws
    assert aws is not None
    for account in aws.settings.accounts:
        scope = account.label

        def work(account=account, scope=scope):
            account_id = _account_id(context, account)
            with context.session_factory() as session:
                previous = last_success(session, "cost_explorer", scope)
            start, end = cost_explorer.window(
                context.now.date(),
                previous,
                aws.settings.restate_days,
                aws.settings.first_run_days,
                context.since,
            )
            rows = cost_explorer.collect(
                aws.client("ce", account, COST_EXPLORER_REGION),
                account=account_id,
                filter_account=account.id is not None,
                start=start,
                end=end,
                tag_key=aws.settings.cost_allocation_tag,
                metric=aws.settings.ce_metric,
                now=context.now,
            )
            return lambda session: cost_explorer.write(
                session, rows, account=account_id, start=start, end=end
            )

        run_scope(context, "cost_explorer", scope, work)


def _run_gpu_cloudwatch(context: Context) -> None:
    aws = context.aws
    assert aws is not None
    start, end = hour_window(context.now, aws.settings.lookback_hours, context.since_datetime)
    for account, region in _aws_scopes(context):

        def work(account=account, region=region):
            account_id = _account_id(context, account)
            cloudwatch = aws.client("cloudwatch", account, region)
            rows = gpu_cloudwatch.collect_cwagent(
                cloudwatch, account=account_id, region=region, start=start, end=end, now=context.now
            )
            rows += gpu_cloudwatch.collect_sagemaker(
                cloudwatch,
                aws.client("sagemaker", account, region),
                account=account_id,
                region=region,
                start=start,
                end=end,
                now=context.now,
            )
            return lambda session: upsert_facts(session, GpuFact, rows)

        run_scope(context, "gpu_cloudwatch", f"{account.label}/{region}", work)


def _run_upstream(context: Context) -> None:
    aws = context.aws
    assert aws is not None
    with context.session_factory() as session:
        specs = upstream.upstream_specs(session)
    if not specs:
        return
    start, end = hour_window(context.now, aws.settings.lookback_hours, context.since_datetime)
    for index, (account, region) in enumerate(_aws_scopes(context)):

        def work(account=account, region=region, first=index == 0):
            account_id = _account_id(context, account)
            chosen = upstream.specs_for_scope(specs, account_id, region, first)
            rows = upstream.collect(
                aws.client("cloudwatch", account, region),
                chosen,
                start=start,
                end=end,
                now=context.now,
            )
            return lambda session: upstream.write(session, rows)

        run_scope(context, "upstream", f"{account.label}/{region}", work)


def _run_prometheus(context: Context) -> None:
    urls = prometheus.prometheus_urls(context.settings.get("prometheus"))
    if not urls:
        context.report.results.append(
            ScopeResult(
                "prometheus", "*", False, 0, "prometheus: no URL; set sources.prometheus.url"
            )
        )
        return
    fetch = context.fetch or prometheus.urllib_fetch
    start, end = hour_window(context.now, PROMETHEUS_LOOKBACK_HOURS, context.since_datetime)
    for url in urls:

        def work(url=url):
            rows = prometheus.collect_dcgm(fetch, url, start=start, end=end, now=context.now)
            rows += prometheus.collect_vllm(fetch, url, start=start, end=end, now=context.now)
            return lambda session: upsert_facts(session, GpuFact, rows)

        run_scope(context, "prometheus", prometheus.redact_url(url), work)  # no credentials


def _run_gpu_prices(context: Context) -> None:
    """Refresh the GPU price table from the AWS Price List API (us-east-1), per region."""
    aws = context.aws
    assert aws is not None
    with context.session_factory() as session:
        fleets = [
            gpu for gpu in session.scalars(select(Workload.gpu)) if gpu and gpu.get("instance_type")
        ]
    instance_types = {str(gpu["instance_type"]) for gpu in fleets} or {
        name for name, _ in gpu_table()
    }
    account = aws.settings.accounts[0]
    for region in aws.settings.regions:

        def work(region=region):
            client = aws.client("pricing", account, PRICING_REGION)
            prices = refresh_gpu_prices(client, instance_types, region, context.now.date())
            return lambda session: record_gpu_prices(session, prices)

        run_scope(context, "gpu_prices", region, work)


def _run_sample(context: Context) -> None:
    end, days, seed = sample_data.sample_settings(context.settings.get("sample"))

    def work():
        return lambda session: sample_data.collect(
            session,
            now=context.now,
            prices=context.prices,
            end=end,
            days=days,
            seed=seed,
            since=context.since,
        )

    run_scope(context, "sample", "bundled", work)


RUNNERS: dict[str, Callable[[Context], None]] = {
    "bedrock_cloudwatch": _run_bedrock,
    "cost_explorer": _run_cost_explorer,
    "gpu_cloudwatch": _run_gpu_cloudwatch,
    "upstream": _run_upstream,
    "prometheus": _run_prometheus,
    "gpu_prices": _run_gpu_prices,
    "sample": _run_sample,
}


def _finish(context: Context, aws_settings: AwsSettings | None) -> None:
    """Prices used, the attribution pass, and the AWS request tally (each its own transaction)."""
    report = context.report
    tag_key = aws_settings.cost_allocation_tag if aws_settings else _tag_key(context.settings)
    try:
        with transaction(context.session_factory) as session:
            context.prices.record(session)
            record_gpu_prices(session, gpu_table().values(), only_if_newer=True)
            report.attribution = attribute_facts(session, tag_key=tag_key, actor="collector")
            record_success(session, "attribution", "*", context.now, report.attribution.series)
    except Exception as error:
        message = f"attribution: {type(error).__name__}: {error}"
        with transaction(context.session_factory) as session:
            record_error(session, "attribution", "*", context.now, message)
        report.results.append(ScopeResult("attribution", "*", False, 0, message))
    report.prices_missing = sorted(context.prices.missing)
    if context.aws is not None:
        counter = context.aws.counter
        report.api_calls = {
            f"{service}:{operation}": n for (service, operation), n in sorted(counter.calls.items())
        }
        report.api_cost = counter.total_cost()
        with transaction(context.session_factory) as session:
            counter.flush(session, report.run_id)
    refresh_after_writing(context.session_factory)


def _tag_key(settings: dict[str, dict[str, Any]]) -> str:
    return str((settings.get("aws") or {}).get("cost_allocation_tag") or "llm-workload")

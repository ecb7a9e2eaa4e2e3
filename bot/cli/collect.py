"""`llmgov collect [--source NAME] [--since DATE]` and
`llmgov import-billing FILE... [--format focus|cur2] [--via athena --database DB --table T --output s3://...]`."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import select

from llmgov.aws.clients import (
    AwsAccount,
    AwsClients,
    AwsSettings,
    describe_aws_error,
    load_aws_settings,
)
from llmgov.bot.cli.common import add_format, migrated_engine, parse_date, print_json
from llmgov.collectors.athena import BILLING_PERIOD, PRICE_PER_TB, import_athena
from llmgov.collectors.attribution import spend_by_workload
from llmgov.collectors.billing_files import FORMATS, ImportReport, import_billing
from llmgov.collectors.run import ALL_SOURCES, CollectReport, collect
from llmgov.models.base import make_session_factory
from llmgov.models.errors import BadInput, SourceError
from llmgov.models.facts import CostFact


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser(
        "collect",
        help="run the collectors once (CloudWatch, Cost Explorer, GPUs, Prometheus, sample)",
        description="Run every configured collector once, or only --source NAME (repeatable).",
    )
    run.add_argument(
        "--source",
        action="append",
        choices=ALL_SOURCES,
        metavar="NAME",
        help=f"only this source (repeatable): {', '.join(ALL_SOURCES)}",
    )
    run.add_argument(
        "--since", type=parse_date, metavar="DATE", help="re-read from this date (YYYY-MM-DD)"
    )
    add_format(run)
    run.set_defaults(handler=_collect)

    billing = subparsers.add_parser(
        "import-billing",
        help="load a FOCUS or CUR 2.0 billing export (CSV, CSV.gz or Parquet), or query it via Athena",
        description=(
            "Import billing export files in one transaction: all of them or nothing. Pass every part "
            "of a billing period together. With --via athena, query a CUR 2.0/FOCUS table instead."
        ),
    )
    billing.add_argument("files", nargs="*", metavar="FILE")
    billing.add_argument(
        "--format", choices=FORMATS, help="the export format (default: from the columns)"
    )
    billing.add_argument("--via", choices=("file", "athena"), default="file")
    billing.add_argument("--database", help="Athena database holding the export table")
    billing.add_argument("--table", help="Athena table of the CUR 2.0 or FOCUS export")
    billing.add_argument(
        "--output", help="S3 location for Athena results, e.g. s3://bucket/athena/"
    )
    billing.add_argument("--workgroup", help="Athena workgroup (default: the account's primary)")
    billing.add_argument(
        "--region", help="Athena region (default: the first of sources.aws.regions)"
    )
    billing.add_argument(
        "--since",
        type=parse_date,
        metavar="DATE",
        help="Athena: first day (default: last month's 1st)",
    )
    billing.add_argument(
        "--until",
        type=parse_date,
        metavar="DATE",
        help="Athena: day after the last (default: tomorrow)",
    )
    billing.add_argument(
        "--partition",
        default=BILLING_PERIOD,
        metavar="COLUMN",
        help="Athena: the table's billing-period partition column, to scan only the months "
        "asked for (default billing_period; `none` for an unpartitioned table)",
    )
    billing.add_argument(
        "--iam-principal",
        action="store_true",
        help="Athena CUR 2.0: also read line_item_iam_principal (the export must include it)",
    )
    billing.add_argument("--json", action="store_true", help="print the import report as JSON")
    billing.set_defaults(handler=_import_billing)


def _collect(args: argparse.Namespace) -> int:
    factory = make_session_factory(migrated_engine())
    now = datetime.now(UTC)
    report = collect(factory, now, sources=args.source, since=args.since)
    start, end = now.date() - timedelta(days=30), now.date() + timedelta(days=1)
    with factory() as session:
        sources = session.scalars(
            select(CostFact.source).where(CostFact.day >= start, CostFact.day < end).distinct()
        ).all()
        spend = {
            source: spend_by_workload(session, start, end, source) for source in sorted(sources)
        }
    if args.format == "json":
        print_json({**report.to_dict(), "llm_spend_30d": _spend_json(spend)})
    else:
        _print_collect(report, spend)
    return 0 if report.ok else 1


def _spend_json(spend: dict[str, dict[str | None, dict]]) -> dict:
    """Per cost source (they describe the same bill: never add them up)."""
    return {
        source: {
            "workloads": {
                slug: {c: str(v) for c, v in totals.items()}
                for slug, totals in by_slug.items()
                if slug
            },
            "unattributed": {c: str(v) for c, v in by_slug.get(None, {}).items()},
        }
        for source, by_slug in spend.items()
    }


def _print_collect(report: CollectReport, spend: dict[str, dict[str | None, dict]]) -> None:
    for result in report.results:
        if result.ok:
            print(f"ok    {result.source:<19} {result.scope:<28} {result.rows} rows")
        else:
            print(f"FAIL  {result.source:<19} {result.scope:<28} {result.error}")
    summary = report.attribution
    print(
        f"attribution: {summary.series} series, {summary.attributed} attributed, "
        f"{summary.unattributed} unattributed"
        + (f"; discovered (unowned): {', '.join(summary.discovered)}" if summary.discovered else "")
    )
    for source, by_slug in spend.items():
        unattributed = by_slug.get(None, {})
        total = {
            c: sum((t.get(c, 0) for t in by_slug.values()), start=0)
            for c in {c for t in by_slug.values() for c in t}
        }
        money = ", ".join(
            f"{unattributed.get(currency, 0):,.2f} of {amount:,.2f} {currency}"
            for currency, amount in sorted(total.items())
        )
        print(f"unattributed LLM spend, last 30 days ({source}): {money}")
    if report.api_calls:
        calls = ", ".join(f"{name} {count}" for name, count in report.api_calls.items())
        print(f"AWS requests: {calls} (cost {report.api_cost:.4f} USD)")
    if report.prices_missing:
        print(
            f"no token price for: {', '.join(report.prices_missing)} (add them to the price override file)"
        )


def _import_billing(args: argparse.Namespace) -> int:
    factory = make_session_factory(migrated_engine())
    with factory() as session:
        aws_settings = load_aws_settings(session) or AwsSettings()
    if args.via == "athena":
        report = _via_athena(args, factory, aws_settings)
    else:
        if not args.files:
            raise BadInput(
                "give at least one billing FILE (or --via athena with --database/--table/--output)"
            )
        report = import_billing(
            factory, args.files, fmt=args.format, tag_key=aws_settings.cost_allocation_tag
        )
    if args.json:
        print_json(report.to_dict())
    else:
        _print_import(report)
    return 0


def _via_athena(args: argparse.Namespace, factory, aws_settings: AwsSettings) -> ImportReport:
    missing = [
        flag
        for flag, value in (
            ("--database", args.database),
            ("--table", args.table),
            ("--output", args.output),
            ("--format", args.format),
        )
        if not value
    ]
    if missing:
        raise BadInput(
            f"--via athena needs {', '.join(missing)}, e.g. --format cur2 --database cur --table cur2 --output s3://bucket/athena/"
        )
    if args.files:
        raise BadInput("--via athena reads a table, not files: drop the FILE arguments")
    today = datetime.now(UTC).date()
    start = args.since or (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    end = args.until or today + timedelta(days=1)
    region = args.region or aws_settings.regions[0]
    partition = None if (args.partition or "").lower() in ("", "none") else args.partition
    try:
        # the reader role of the first configured account, with the collectors' retries
        account = aws_settings.accounts[0] if aws_settings.accounts else AwsAccount()
        athena = AwsClients(aws_settings).client("athena", account, region)
        return import_athena(
            factory,
            athena,
            database=args.database,
            table=args.table,
            output=args.output,
            fmt=args.format,
            start=start,
            end=end,
            workgroup=args.workgroup,
            iam_principal=args.iam_principal,
            tag_key=aws_settings.cost_allocation_tag,
            partition=partition,
        )
    except (ClientError, BotoCoreError) as error:
        raise SourceError(describe_aws_error(error, what="athena")) from None


def _print_import(report: ImportReport) -> None:
    days = f"{report.first_day}..{report.last_day}" if report.first_day else "no days"
    print(
        f"imported {report.rows:,} rows ({report.format}, {report.currency}, {days}) into "
        f"{report.facts:,} daily cost facts in {report.seconds:.1f}s"
    )
    print(
        f"total {report.total_cost:,.2f} {report.currency}; LLM {report.llm_cost:,.2f} {report.currency} in {report.llm_rows:,} rows"
    )
    llm_services = {
        name: total for name, total in report.by_service.items() if _is_llm_service(name)
    }
    for name, total in sorted(llm_services.items(), key=lambda item: -item[1]):
        print(f"  {name}: {total:,.2f}")
    if report.bytes_scanned is not None:
        scanned = report.bytes_scanned
        print(
            f"Athena scanned {scanned / 1e6:,.1f} MB (about ${scanned / 1e12 * PRICE_PER_TB:,.4f} "
            f"at ${PRICE_PER_TB:g} per TB)"
        )
    summary = report.attribution
    print(
        f"attribution: {summary.series} series, {summary.attributed} attributed, {summary.unattributed} unattributed"
        + (f"; discovered (unowned): {', '.join(summary.discovered)}" if summary.discovered else "")
    )


def _is_llm_service(name: str) -> bool:
    lowered = name.lower()
    return "bedrock" in lowered or "openai" in lowered

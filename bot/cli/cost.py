"""`llmgov cost [SCOPE] [PERIOD] [--format text|json|csv] [--as-of DATE] [--by GROUP]`.

What `/llm-cost` answers, for scripts and spreadsheets. Without a scope: the workloads of
`--user` (or $LLMGOV_USER) when given, else `all`. Every workload in scope is detailed
(projection, unit costs), not only the top ones the Slack answer shows.

`--format csv` is for finance: one row per workload (showback), or with `--by team`,
`feature` or `customer` one row per group (chargeback), plus a row for the spend no workload
claims. Money in CSV and JSON is rounded to cents.

Every CSV cell goes through `csv_cell` (formula injection, OWASP): a text cell starting with
`=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, so a spreadsheet shows it
as text instead of running it; numbers and dates are written as they are.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections import defaultdict
from decimal import Decimal

from llmgov.bot.blocks.common import blocks_to_text
from llmgov.bot.blocks.cost import cost_message
from llmgov.bot.cli.common import add_as_of, add_format, migrated_engine, print_json
from llmgov.commands.cost import (
    CostReport,
    HelpRequest,
    Scope,
    build_cost_report,
    cents,
    parse_cost_text,
    report_to_json,
    today_utc,
)
from llmgov.commands.parsing import ParseError
from llmgov.governance.people import SLACK_USER_ID
from llmgov.models.base import make_session_factory
from llmgov.models.errors import BadInput

GROUPS = ("team", "feature", "customer")
UNATTRIBUTED = "(unattributed)"
NONE = "(none)"
WORKLOAD_COLUMNS = (
    "period_start",
    "period_end",
    "workload",
    "name",
    "team",
    "feature",
    "customer",
    "owner",
    "owner_name",
    "platform",
    "status",
    "total",
    "billed",
    "estimated",
    "previous_period",
    "month_to_date",
    "projected_month_end",
    "projected_low",
    "projected_high",
    "budget",
    "budget_exhausted_on",
    "currency",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cost",
        help="what workloads cost and where spend is going (as /llm-cost)",
        description="Spend in a period, month to date, projections, budgets; as /llm-cost.",
    )
    parser.add_argument(
        "words",
        nargs="*",
        metavar="SCOPE|PERIOD",
        help="a workload slug, @user, team:X, feature:X, customer:X or all; "
        "7d, 30d, 90d, mtd, last-month or YYYY-MM",
    )
    add_format(parser, "text", "json", "csv")
    add_as_of(parser)
    parser.add_argument(
        "--by", choices=GROUPS, help="group workloads by team, feature or customer (csv, json)"
    )
    parser.add_argument(
        "--user",
        default=os.environ.get("LLMGOV_USER"),
        help="Slack user id whose workloads are costed when no scope is given",
    )
    parser.set_defaults(handler=_cost)


def _cost(args: argparse.Namespace) -> int:
    if args.user is not None and not SLACK_USER_ID.match(args.user):
        raise BadInput(f"--user {args.user!r} is not a Slack user id like U0ANA0001")
    known_at = args.known_at
    today = args.as_of or (known_at.date() if known_at else today_utc())
    words = [w for w in args.words if w.lower() != "public"]
    try:
        request = parse_cost_text(" ".join(words), today=today, known_at=known_at)
    except ParseError as error:
        raise BadInput(cli_error(error, "cost")) from None
    if isinstance(request, HelpRequest):
        print(request.text.replace("*", ""))
        return 0
    if request.scope.kind == "mine" and args.user is None:
        request = type(request)(Scope("all"), request.period, False, today, known_at)
    engine = migrated_engine()
    with make_session_factory(engine)() as session:
        try:
            report = build_cost_report(
                session, request, caller=args.user, detail_limit=None, with_chart=False
            )
        except ParseError as error:
            raise BadInput(cli_error(error, "cost")) from None
    if args.format == "json":
        data = report_to_json(report)
        if args.by:
            data["by"] = args.by
            data["groups"] = [
                dict(zip(_GROUP_COLUMNS, row, strict=True)) for row in groups(report, args.by)
            ]
        print_json(data)
    elif args.format == "csv":
        write_csv(report, args.by, sys.stdout)
    else:
        sys.stdout.write(blocks_to_text(cost_message(report).blocks))
    return 0


def cli_error(error: ParseError, command: str) -> str:
    """A parse error with its example as the command line would be typed."""
    example = error.example.replace(f"/llm-{command}", f"llmgov {command}", 1)
    return f"{error.message} For example: {example}"


_GROUP_COLUMNS = ("group", "workloads", "total", "estimated", "month_to_date", "budget", "share")


def groups(report: CostReport, by: str) -> list[tuple]:
    """Chargeback rows: (group, workloads, total, estimated, month to date, budget, share),
    largest first, then (for `all`) the spend no workload claims, so the rows add up."""
    totals: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 4)
    counts: dict[str, int] = defaultdict(int)
    budgets: dict[str, bool] = defaultdict(bool)
    for row in report.workloads:
        key = getattr(row.workload, by) or NONE
        values = totals[key]
        values[0] += row.total
        values[1] += row.estimated
        values[2] += row.month_to_date
        if row.workload.budget is not None:
            values[3] += row.workload.budget
            budgets[key] = True
        counts[key] += 1
    grand = report.total or Decimal(1)
    rows = [
        (
            key,
            counts[key],
            cents(v[0]),
            cents(v[1]),
            cents(v[2]),
            cents(v[3]) if budgets[key] else None,
            round(float(v[0] / grand), 4) if report.total else None,
        )
        for key, v in sorted(totals.items(), key=lambda item: (-item[1][0], item[0]))
    ]
    if report.request.scope.kind != "all":
        return rows  # the org's unattributed spend is not part of a narrower scope
    rows.append(
        (
            UNATTRIBUTED,
            0,
            cents(report.unattributed),
            None,
            None,
            None,
            round(float(report.unattributed / grand), 4) if report.total else None,
        )
    )
    return rows


# What a spreadsheet takes for the start of a formula (OWASP's CSV injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A cell a spreadsheet shows and never evaluates: text that could start a formula gets
    a leading `'`; numbers (a negative amount included), dates and empty cells stay as is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class _SafeWriter:
    """`csv.writer` whose every row goes through `csv_cell`."""

    def __init__(self, out) -> None:
        self._writer = csv.writer(out, lineterminator="\n")

    def writerow(self, row) -> None:
        self._writer.writerow([csv_cell(value) for value in row])


def write_csv(report: CostReport, by: str | None, out) -> None:
    writer = _SafeWriter(out)
    period = report.period
    if by:
        writer.writerow(["period_start", "period_end", by, *_GROUP_COLUMNS[1:], "currency"])
        for row in groups(report, by):
            writer.writerow([period.start, period.end, *row, report.currency])
        return
    writer.writerow(WORKLOAD_COLUMNS)
    for row in report.workloads:
        info = row.workload
        projection = row.projected_month_end
        writer.writerow(
            [
                period.start,
                period.end,
                info.slug,
                info.name or "",
                info.team or "",
                info.feature or "",
                info.customer or "",
                info.owner_id or "",
                info.owner_label or "",
                info.platform,
                info.status,
                cents(row.total),
                cents(row.total - row.estimated),
                cents(row.estimated),
                cents(row.previous),
                cents(row.month_to_date),
                cents(projection.point) if projection else "",
                cents(projection.low) if projection else "",
                cents(projection.high) if projection else "",
                cents(info.budget) if info.budget is not None else "",
                row.budget_exhausted_on or "",
                report.currency,
            ]
        )
    if report.request.scope.kind == "all":  # so the rows add up to the total
        unattributed = dict.fromkeys(WORKLOAD_COLUMNS, "")
        unattributed.update(
            period_start=period.start,
            period_end=period.end,
            workload=UNATTRIBUTED,
            total=cents(report.unattributed),
            currency=report.currency,
        )
        writer.writerow(unattributed.values())


__all__ = ["FORMULA_STARTS", "csv_cell", "groups", "register", "write_csv"]

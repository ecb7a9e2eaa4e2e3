"""`/llm-cost [SCOPE] [PERIOD] [public]`: what does this cost, and where is it going.

parse text → resolve the scope → aggregate facts in SQL → the numpy core → `CostReport`,
a view model that the Slack blocks, the CLI text/JSON/CSV and the App Home all render.

Money: the period, month-to-date and previous-period totals are exact `Decimal` sums done by
the database; the projections come from the float core and are rounded to cents on the way
out. Billed cost (`CostFact`, the truth, 8-48 h late) is used for every day it exists; the
days after the last billed day are filled with the token-based estimate
(`UsageFact.estimated_cost`), reported apart with how far such estimates ran from the bill.
"""

from __future__ import annotations

import calendar
import difflib
import heapq
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import and_, case, func, literal, or_, select
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from llmgov.commands.parsing import ParseError, Token, TokenKind, tokenize
from llmgov.economics.decompose import EFFECTS, PeriodTotals, decompose
from llmgov.economics.forecast import forecast
from llmgov.governance.ledger import (
    NO_BUDGET,
    Freshness,
    budget_status,
    data_warning,
    freshness,
    gap_kinds,
)
from llmgov.governance.registry_view import Gap, gaps_from
from llmgov.governance.thresholds import Thresholds, for_workload, load_thresholds
from llmgov.models.base import plain_rows
from llmgov.models.facts import CostFact, UpstreamFact, UsageFact
from llmgov.models.governance import Alert, AlertStatus
from llmgov.models.ledger import billed_adjustment, billed_any, billed_usage, ledger_billed
from llmgov.models.registry import OrganisationProfile, Person, Team, Workload, is_slug

EXAMPLE = "/llm-cost team:search 30d"
HELP = """*/llm-cost [SCOPE] [PERIOD] [public]*: what LLM workloads cost and where spend is going.
*SCOPE* (default: the workloads you own)
• `search-summaries`: one workload, by its slug
• `@ana`: the workloads a person owns
• `team:search`, `feature:result-summaries`, `customer:acme`: a team, a feature, a customer
• `all`: every workload, plus spend no workload claims (unattributed)
*PERIOD* (default: `30d`)
• `7d`, `30d`, `90d` (any number of days up to 365): the last N days, today included
• `mtd`: this month so far · `last-month` · `2026-10`: a calendar month
• `q3` (this year's) or `2026-Q3`: a quarter · `2026-10-01..2026-10-31`: any days
*public*: post the answer in the channel instead of only to you
Examples: `/llm-cost`, `/llm-cost team:search mtd`, `/llm-cost search-summaries 90d public`"""

DEFAULT_PERIOD = "30d"
MAX_DAYS = 400
# Days of history the projection fits on: long enough for trend plus weekday, short enough
# that last quarter's regime does not dominate.
HISTORY_DAYS = 56
# Above this many workloads in scope, the per-workload detail (projection, unit economics,
# the decomposition of change) is computed for the top ones only; totals stay exact.
DEFAULT_DETAIL_LIMIT = 15
DRIFT_WINDOW_DAYS = 7
ZERO = Decimal(0)
DRIFT_SCOPE_LIMIT = 500
MAX_PERIOD_DAYS = 365  # the longest `Nd` period
DAYS = re.compile(r"^(\d{1,3})d\Z")
MONTH = re.compile(r"^(\d{4})-(\d{2})\Z")
QUARTER = re.compile(r"^(?:(\d{4})-)?q([1-4])\Z")
RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})\Z")
# words that are meant as a period but are not one we know: "period not understood"
PERIOD_LIKE = re.compile(r"^(?:\d.*|q\d+|.*\.\..*|last-?\w*|this-?\w*)\Z")
PERIOD_HELP = (
    "Use `30d` (up to 365d), `mtd`, `last-month`, `2026-10`, `q3`, `2026-Q3` or "
    "`2026-10-01..2026-10-31`."
)
SCOPE_KEYS = ("team", "feature", "customer", "workload", "user")
UNRESOLVED_STATUSES = (
    AlertStatus.OPEN.value,
    AlertStatus.ACKNOWLEDGED.value,
    AlertStatus.SNOOZED.value,
)


# ---- the request -----------------------------------------------------------------------
@dataclass(frozen=True)
class Scope:
    """What to cost. kind: mine | workload | user | team | feature | customer | all."""

    kind: str
    value: str | None = None
    label: str | None = None  # a person's display name, for `user`

    def describe(self) -> str:
        if self.kind == "mine":
            return "your workloads"
        if self.kind == "all":
            return "all workloads"
        if self.kind == "workload":
            return str(self.value)
        if self.kind == "user":
            return f"@{self.label or self.value}"
        return f"{self.kind}:{self.value}"

    def token(self) -> str:
        """The scope as the command would be typed again (for buttons and the CLI)."""
        if self.kind == "mine":
            return ""
        if self.kind in ("all", "workload"):
            return "all" if self.kind == "all" else str(self.value)
        if self.kind == "user":
            return f"<@{self.value}>" if _is_slack_id(self.value) else f"@{self.value}"
        value = str(self.value)
        return f'{self.kind}:"{value}"' if " " in value else f"{self.kind}:{value}"


@dataclass(frozen=True)
class Period:
    """Inclusive days [start, end]; `label` is what was typed (`30d`, `mtd`, `2026-10`)."""

    label: str
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period just before, of the same length (the calendar month before a month)."""
        if self.label == "last-month" or MONTH.match(self.label) or self.label == "mtd":
            prev_end = self.start - timedelta(days=1)
            prev_start = prev_end.replace(day=1)
            if self.label == "mtd":  # month to date vs the same days of the month before
                prev_end = min(prev_start + timedelta(days=self.days - 1), prev_end)
            return Period(f"before {self.label}", prev_start, prev_end)
        return Period(
            f"before {self.label}",
            self.start - timedelta(days=self.days),
            self.start - timedelta(days=1),
        )


@dataclass(frozen=True)
class CostRequest:
    scope: Scope
    period: Period
    public: bool
    as_of: date  # "today" for the answer
    known_at: datetime | None = None  # only facts collected before this (for --as-of)


@dataclass(frozen=True)
class HelpRequest:
    text: str = HELP


def _is_slack_id(value: str | None) -> bool:
    return bool(value) and bool(re.match(r"^[UW][A-Z0-9]{2,}$", str(value)))


def resolve_period(word: str, today: date) -> Period | None:
    """The period a word names, or None if the word is not a period."""
    word = word.lower()
    if word in ("mtd", "this-month"):
        return Period("mtd", today.replace(day=1), today)
    if word in ("last-month", "lastmonth"):
        end = today.replace(day=1) - timedelta(days=1)
        return Period("last-month", end.replace(day=1), end)
    days = DAYS.match(word)
    if days:
        count = int(days.group(1))
        if not 1 <= count <= MAX_PERIOD_DAYS:
            raise ParseError(
                f"`{word}` is out of range: give between 1 and {MAX_PERIOD_DAYS} days.", EXAMPLE
            )
        return Period(f"{count}d", today - timedelta(days=count - 1), today)
    quarter = QUARTER.match(word)
    if quarter:
        year = int(quarter.group(1) or today.year)
        first_month = 3 * (int(quarter.group(2)) - 1) + 1
        start = date(year, first_month, 1)
        last_month = first_month + 2
        end = date(year, last_month, calendar.monthrange(year, last_month)[1])
        if start > today:
            raise ParseError(f"`{word}` is in the future; today is {today.isoformat()}.", EXAMPLE)
        label = f"{year}-Q{quarter.group(2)}"
        return Period(label, start, min(end, today))
    days_range = RANGE.match(word)
    if days_range:
        try:
            start, end = (date.fromisoformat(days_range.group(i)) for i in (1, 2))
        except ValueError:
            raise ParseError(f"`{word}`: period not understood. {PERIOD_HELP}", EXAMPLE) from None
        if start > end:
            raise ParseError(f"`{word}` ends before it starts: give FIRST..LAST.", EXAMPLE)
        if end > today:
            raise ParseError(f"`{word}` ends in the future; today is {today.isoformat()}.", EXAMPLE)
        if (end - start).days + 1 > MAX_DAYS:
            raise ParseError(f"`{word}` is longer than {MAX_DAYS} days: shorten it.", EXAMPLE)
        return Period(word, start, end)
    month = MONTH.match(word)
    if month:
        year, number = int(month.group(1)), int(month.group(2))
        if not 1 <= number <= 12:
            raise ParseError(
                f"`{word}` is not a month: write it as YYYY-MM.", "/llm-cost all 2026-10"
            )
        start = date(year, number, 1)
        if start > today:
            raise ParseError(
                f"`{word}` is in the future; the latest month with spend is {today:%Y-%m}.",
                f"/llm-cost all {today:%Y-%m}",
            )
        end = date(year, number, calendar.monthrange(year, number)[1])
        return Period(word, start, min(end, today))
    return None


def parse_cost_text(
    text: str, *, today: date, known_at: datetime | None = None
) -> CostRequest | HelpRequest:
    """Parse the command text; `ParseError` says what was wrong and gives an example.

    `today` is the day the answer is for; `known_at` (for `--as-of`) cuts off facts
    collected later."""
    scope: Scope | None = None
    period: Period | None = None
    public = False
    text = re.sub(r"\blast\s+month\b", "last-month", text or "", flags=re.IGNORECASE)
    for token in tokenize(_quote_values(text)):
        word = token.value
        if token.is_word and word.lower() in ("help", "-h", "--help", "?"):
            return HelpRequest()
        if token.is_word and word.lower() == "public":
            public = True
            continue
        new_period = resolve_period(word, today) if token.is_word else None
        if new_period is not None:
            if period is not None:
                raise ParseError(
                    f"Two periods given (`{period.label}` and `{word}`): give one.", EXAMPLE
                )
            period = new_period
            continue
        if token.is_word and PERIOD_LIKE.match(word.lower()):
            raise ParseError(f"`{word}`: period not understood. {PERIOD_HELP}", EXAMPLE)
        new_scope = _scope_of(token)
        if scope is not None:
            raise ParseError(
                f"Two scopes given (`{scope.describe()}` and `{token.raw or word}`): give one.",
                EXAMPLE,
            )
        scope = new_scope
    return CostRequest(
        scope=scope or Scope("mine"),
        period=period or resolve_period(DEFAULT_PERIOD, today),  # type: ignore[arg-type]
        public=public,
        as_of=today,
        known_at=known_at,
    )


_KEY_QUOTED = re.compile(r"(?<![\w\"“])(\w+):[\"“]([^\"”]*)[\"”]")


def _quote_values(text: str) -> str:
    """`customer:"Acme Corp"` → `"customer:Acme Corp"`, so the value stays one token."""
    return _KEY_QUOTED.sub(lambda m: f'"{m.group(1)}:{m.group(2)}"', text)


def _scope_of(token: Token) -> Scope:
    if token.kind is TokenKind.USER:
        return Scope("user", token.value, token.label)
    if token.kind is not TokenKind.WORD:
        raise ParseError(
            f"`{token.raw}` cannot be a scope: name a workload, @person, team:X, feature:X, "
            "customer:X or all.",
            EXAMPLE,
        )
    word = token.value
    if word.lower() == "all":
        return Scope("all")
    if word.startswith("@") and len(word) > 1:
        return Scope("user", word[1:])
    pair = token.key_value()
    if pair is not None:
        key, value = pair
        if key not in SCOPE_KEYS:
            close = difflib.get_close_matches(key, SCOPE_KEYS, n=1)
            hint = f" Did you mean `{close[0]}:{value}`?" if close else ""
            raise ParseError(
                f"`{word}` is not a scope: the prefixes are team:, feature:, customer:.{hint}",
                EXAMPLE,
            )
        if key == "user":
            return Scope("user", value.lstrip("@"))
        return Scope(key, value.lower() if key in ("team", "workload") else value)
    if is_slug(word.lower()):
        return Scope("workload", word.lower())
    raise ParseError(
        f"`{word}` is neither a workload slug, a period (7d, 30d, 90d, mtd, last-month, "
        "YYYY-MM) nor a scope (@person, team:X, feature:X, customer:X, all).",
        EXAMPLE,
    )


# ---- the view model --------------------------------------------------------------------
@dataclass(slots=True)  # not frozen: `all` builds 10,000 of these, and frozen init is slow
class WorkloadInfo:
    """The registry facts of one workload the answer talks about."""

    id: int
    slug: str
    name: str | None
    platform: str
    status: str
    team: str | None
    owner_id: str | None  # Slack user id
    owner_label: str | None
    owner_active: bool
    backup_owner_id: str | None
    feature: str | None
    customer: str | None
    budget: Decimal | None
    currency: str
    has_exit_strategy: bool
    critical_path: bool

    def gaps(self) -> tuple[Gap, ...]:
        """Ownership gaps, by the registry's one rule (`governance.registry_view.gaps_of`)."""
        return gaps_from(
            self.status,
            self.owner_active if self.owner_label else None,
            self.budget is not None,
            self.has_exit_strategy,
        )


@dataclass(frozen=True)
class Range:
    """A projection: the point and its range (90% by default), in the report's currency."""

    point: Decimal
    low: Decimal
    high: Decimal


@dataclass(frozen=True)
class UnitEconomics:
    """Spend per unit of use over the period (None where the unit was not measured)."""

    cost: Decimal
    input_tokens: float
    output_tokens: float
    requests: float  # LLM invocations
    errors: float  # failed invocations (client and server errors)
    throttles: float
    upstream_requests: float  # the requests that trigger LLM calls (0: not measured)
    since: date | None = None  # the first day measured, when the metrics start after the period

    @property
    def tokens(self) -> float:
        return self.input_tokens + self.output_tokens

    @property
    def per_1k_tokens(self) -> Decimal | None:
        return _ratio(self.cost * 1000, self.tokens)

    @property
    def per_request(self) -> Decimal | None:
        return _ratio(self.cost, self.requests)

    @property
    def per_upstream_request(self) -> Decimal | None:
        return _ratio(self.cost, self.upstream_requests)

    @property
    def tokens_per_request(self) -> float | None:
        return self.tokens / self.requests if self.requests else None

    @property
    def calls_per_upstream_request(self) -> float | None:
        return self.requests / self.upstream_requests if self.upstream_requests else None

    @property
    def retry_share(self) -> float | None:
        """Share of invocations that failed or were throttled (and so were likely retried)."""
        return (self.errors + self.throttles) / self.requests if self.requests else None


@dataclass(slots=True)  # one per workload in scope, like WorkloadInfo
class WorkloadCost:
    workload: WorkloadInfo
    total: Decimal  # in the period, billed plus estimated
    estimated: Decimal  # the part of `total` that is a token estimate (billing lags)
    previous: Decimal | None  # the period before, same length (None: not computed, see
    month_to_date: Decimal  # `build_cost_report` on `all`)
    projected_month_end: Range | None = None  # None: not computed (outside the detail)
    budget_exhausted_on: date | None = None
    budget_exhausted_earliest: date | None = None
    unit: UnitEconomics | None = None
    open_alerts: int = 0
    budget_status: str = NO_BUDGET  # `governance.ledger.budget_status`


@dataclass(frozen=True)
class Effect:
    name: str  # volume | intensity | price_mix | retries | other
    amount: Decimal


@dataclass(frozen=True)
class Change:
    """Why spend changed from the previous period: effects that add up to `delta`."""

    previous_period: Period
    previous: Decimal
    current: Decimal
    effects: tuple[Effect, ...]
    movers: tuple[tuple[str, Decimal], ...]  # (slug, change) biggest first
    explained_workloads: int  # how many workloads the effects were computed over
    movers_among: int | None = None  # movers found among this many top spenders (None: all)

    @property
    def delta(self) -> Decimal:
        return self.current - self.previous

    @property
    def percent(self) -> float | None:
        return float(self.delta / self.previous * 100) if self.previous else None


@dataclass(frozen=True)
class FindingView:
    kind: str
    severity: str
    status: str
    workload: str | None
    message: str
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class Billing:
    """How fresh the bill is, and how far token estimates ran from it."""

    billed_through: date | None  # the last day with billed cost (any workload)
    estimated_days: int  # days of the period covered by token estimates only
    estimated: Decimal  # those days' estimate, in the scope
    drift_window: tuple[date, date] | None  # billed days compared
    drift_billed: Decimal | None
    drift_estimated: Decimal | None
    drift_sample: int | None = None  # compared over this many top workloads (None: all)

    @property
    def drift_percent(self) -> float | None:
        if not self.drift_billed or self.drift_estimated is None:
            return None
        return float((self.drift_estimated - self.drift_billed) / self.drift_billed * 100)


@dataclass(frozen=True)
class ChartSeries:
    days: tuple[date, ...]
    daily: tuple[float, ...]
    estimated: tuple[bool, ...]
    month_days: tuple[date, ...]
    month_actual: tuple[float | None, ...]
    projection: tuple[float | None, ...]
    projection_low: tuple[float | None, ...]
    projection_high: tuple[float | None, ...]
    budget: float | None


@dataclass(frozen=True)
class CostReport:
    request: CostRequest
    scope_label: str
    currency: str
    period: Period
    total: Decimal  # the scope's spend in the period (for `all`, unattributed included)
    billed: Decimal
    estimated: Decimal
    unattributed: Decimal  # spend in the period that no workload claims (whole organisation)
    month_to_date: Decimal
    projection: Range | None  # the scope's month end
    budget: Decimal | None  # the sum of the scope's monthly budgets
    budgeted_workloads: int
    budget_exhausted_on: date | None
    budget_exhausted_earliest: date | None
    billing: Billing
    workloads: tuple[WorkloadCost, ...]  # ranked by spend in the period
    unit: UnitEconomics | None
    change: Change | None
    findings: tuple[FindingView, ...]
    findings_total: int
    chart: ChartSeries | None
    notes: tuple[str, ...] = ()
    # credits, refunds, tax, ... in the period: kept out of every total (models/ledger.py)
    adjustments: dict[str, Decimal] = field(default_factory=dict)
    limits: Thresholds = field(default_factory=Thresholds)  # the organisation's thresholds
    freshness: tuple[Freshness, ...] = ()  # each source's newest data and last run
    # "Billing data through 26 Nov (12 days old)": spend data is missing; no status, trend
    # or change is given that would rest on the missing days
    data_warning: str | None = None
    provisional_days: tuple[date, ...] = ()  # Cost Explorer `Estimated` days in the period

    @property
    def gaps(self) -> list[tuple[WorkloadInfo, tuple[Gap, ...]]]:
        found = [(w.workload, w.workload.gaps()) for w in self.workloads]
        return [(info, gaps) for info, gaps in found if gaps]

    @property
    def single(self) -> WorkloadCost | None:
        """The workload, when the scope is one workload."""
        return (
            self.workloads[0] if self.request.scope.kind == "workload" and self.workloads else None
        )

    @property
    def budget_status(self) -> str:
        """The scope's budget by the one rule (`governance.ledger.budget_status`)."""
        return _status(
            self.budget, self.month_to_date, self.projection, self.limits, stale=self.stale
        )

    @property
    def stale(self) -> bool:
        return self.data_warning is not None


def _status(
    budget: Decimal | None,
    month_to_date: Decimal,
    projection: Range | None,
    limits: Thresholds,
    *,
    stale: bool = False,
) -> str:
    return budget_status(
        budget,
        month_to_date,
        None if projection is None else projection.point,
        None if projection is None else projection.high,
        limits,
        stale=stale,
    )


def _ratio(amount: Decimal, units: float) -> Decimal | None:
    if not units:
        return None
    return amount / Decimal(repr(float(units)))


def cents(amount: Decimal | float | None) -> float | None:
    """Money for JSON: a number rounded to cents."""
    if amount is None:
        return None
    return float(Decimal(str(amount)).quantize(Decimal("0.01")))


# ---- scope resolution ------------------------------------------------------------------
def organisation_currency(session: Session) -> str:
    return session.scalar(select(OrganisationProfile.currency).limit(1)) or "USD"


def _workload_columns():
    """The registry columns `WorkloadInfo` needs, joined in one statement."""
    owner = aliased(Person)
    backup = aliased(Person)
    return (
        select(
            Workload.id,
            Workload.slug,
            Workload.name,
            Workload.platform,
            Workload.status,
            Team.slug,
            owner.slack_id,
            func.coalesce(owner.name, owner.email, owner.slack_id),
            owner.active,
            backup.slack_id,
            Workload.feature,
            Workload.customer,
            Workload.budget_monthly,
            Workload.currency,
            Workload.exit_strategy,
            Workload.critical_path,
        )
        .outerjoin(Team, Team.id == Workload.team_id)
        .outerjoin(owner, owner.id == Workload.owner_id)
        .outerjoin(backup, backup.id == Workload.backup_owner_id)
    )


def _info(row: Sequence[Any]) -> WorkloadInfo:
    # positional: `all` builds 10,000 of these (see `_workload_columns` for the order)
    return WorkloadInfo(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        row[7],
        bool(row[8]) if row[7] is not None else False,
        row[9],
        row[10],
        row[11],
        row[12],
        row[13],
        bool((row[14] or "").strip()),  # as `gaps_from` reads it
        bool(row[15]),
    )


def find_person_for_scope(session: Session, value: str) -> Person | None:
    """A person named by Slack id, email, or (case-insensitively) name or email local part."""
    lowered = value.lower()
    person = session.scalar(
        select(Person).where(or_(Person.slack_id == value, func.lower(Person.email) == lowered))
    )
    if person is not None:
        return person
    matches = session.scalars(
        select(Person).where(
            or_(func.lower(Person.name) == lowered, func.lower(Person.email).like(f"{lowered}@%"))
        )
    ).all()
    if len(matches) > 1:
        raise ParseError(
            f"`@{value}` matches {len(matches)} people; mention them with Slack's @ picker.",
            "/llm-cost @ana",
        )
    return matches[0] if matches else None


def resolve_scope(session: Session, scope: Scope, caller: str | None) -> list[WorkloadInfo]:
    """The workloads in scope, or a `ParseError` naming what does not exist (with a hint)."""
    statement = _workload_columns()
    if scope.kind == "all":
        condition = None
    elif scope.kind == "workload":
        condition = Workload.slug == scope.value
    elif scope.kind in ("mine", "user"):
        who = caller if scope.kind == "mine" else scope.value
        if who is None:
            raise ParseError("Give a scope: there is no caller to take workloads from.", EXAMPLE)
        person = find_person_for_scope(session, who)
        if person is None:
            if scope.kind == "mine":
                return []
            raise ParseError(
                f"No one called `@{scope.value}` is in the registry.", "/llm-cost @ana"
            )
        condition = or_(Workload.owner_id == person.id, Workload.backup_owner_id == person.id)
    elif scope.kind == "team":
        team_id = session.scalar(
            select(Team.id).where(
                or_(Team.slug == scope.value, func.lower(Team.name) == str(scope.value).lower())
            )
        )
        if team_id is None:
            known = session.scalars(select(Team.slug)).all()
            raise ParseError(
                f"There is no team `{scope.value}`.{_hint(str(scope.value), known, 'team:')}",
                f"/llm-cost team:{known[0] if known else 'search'}",
            )
        condition = Workload.team_id == team_id
    else:  # feature, customer
        column = Workload.feature if scope.kind == "feature" else Workload.customer
        condition = func.lower(column) == str(scope.value).lower()
    if condition is not None:
        statement = statement.where(condition)
    rows = [_info(row) for row in plain_rows(session, statement.order_by(Workload.slug))]
    if not rows and scope.kind == "workload":
        known = session.scalars(select(Workload.slug)).all()
        raise ParseError(
            f"There is no workload `{scope.value}`.{_hint(str(scope.value), known, '')}",
            f"/llm-cost {known[0] if known else 'search-summaries'} 30d",
        )
    if not rows and scope.kind in ("feature", "customer"):
        column = Workload.feature if scope.kind == "feature" else Workload.customer
        known = [v for v in session.scalars(select(column).distinct()) if v]
        raise ParseError(
            f"No workload has {scope.kind} `{scope.value}`."
            f"{_hint(str(scope.value), known, scope.kind + ':')}",
            f"/llm-cost {scope.kind}:{known[0] if known else 'acme'}",
        )
    return rows


def _hint(value: str, known: Iterable[str], prefix: str) -> str:
    close = difflib.get_close_matches(value, list(known), n=1, cutoff=0.6)
    return f" Did you mean `{prefix}{close[0]}`?" if close else ""


# ---- facts, aggregated in SQL ------------------------------------------------------------
def today_utc() -> date:
    """The answer's day when none is given (listeners call it through the module, so
    tests can pin it)."""
    return datetime.now(UTC).date()


def start_of_day(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def end_of_day(day: date) -> datetime:
    """The first instant after `day` (UTC): facts collected before it were known on `day`."""
    return start_of_day(day + timedelta(days=1))


def _daterange(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _sum_within(
    measure: ColumnElement,
    column: ColumnElement,
    low: Any,
    high: Any,
    scan_low: Any,
    scan_high: Any,
    *,
    inclusive: bool,
) -> ColumnElement:
    """SUM(measure) over the rows with `column` in [low, high] (`inclusive`) or [low, high),
    in a query whose WHERE already keeps `column` in the same kind of range [scan_low,
    scan_high]. Bounds the WHERE already enforces are left out: each comparison is paid on
    every row scanned (hundreds of thousands on `all`), and a range that is the whole scan
    needs none. The rows summed, so the sums, are the same."""
    conditions = []
    if low > scan_low:
        conditions.append(column >= low)
    if high < scan_high:
        conditions.append(column <= high if inclusive else column < high)
    if not conditions:
        return func.sum(measure)
    return func.sum(case((and_(*conditions), measure)))


class FactQuery:
    """The fact filters of one answer: the scope, the as-of cut-off, the dialect.

    `ids` None means every workload, and spend no workload claims is kept (as workload id
    None, restricted to LLM spend); otherwise only facts attributed to those workloads.
    `known_at`: only facts collected before it (reproducible `--as-of` answers).
    """

    def __init__(self, session: Session, ids: Sequence[int] | None, known_at: datetime | None):
        self.session = session
        self.ids = None if ids is None else list(ids)
        self.known_at = known_at
        self.dialect = session.get_bind().dialect.name

    def _rows(self, statement) -> Any:
        return plain_rows(self.session, statement)

    def _scope(self, column: ColumnElement, is_llm: ColumnElement | None = None) -> ColumnElement:
        if self.ids is None:
            return literal(True) if is_llm is None else or_(column.is_not(None), is_llm)
        if len(self.ids) == 1:
            return column == self.ids[0]
        return column.in_(self.ids)

    def cost_where(self, start: date, end: date) -> list[ColumnElement]:
        conditions = [
            CostFact.day >= start,
            CostFact.day <= end,
            self._scope(CostFact.workload_id),
            ledger_billed(),
        ]
        if self.known_at is not None:
            conditions.append(CostFact.collected_at < self.known_at)
        return conditions

    def usage_where(self, start: date, end: date) -> list[ColumnElement]:
        conditions = [
            UsageFact.hour >= start_of_day(start),
            UsageFact.hour < end_of_day(end),
            self._scope(UsageFact.workload_id),
        ]
        if self.known_at is not None:
            conditions.append(UsageFact.collected_at < self.known_at)
        return conditions

    def usage_day(self) -> ColumnElement:
        """The UTC calendar day of a usage fact's hour, on either backend."""
        if self.dialect == "postgresql":
            return func.date(func.timezone("UTC", UsageFact.hour))
        return func.date(UsageFact.hour)

    # -- queries --
    def billed_through(self, as_of: date) -> date | None:
        """The last day with billed cost (any workload): billing is at least this fresh."""
        statement = select(func.max(CostFact.day)).where(CostFact.day <= as_of, billed_any())
        if self.known_at is not None:
            statement = statement.where(CostFact.collected_at < self.known_at)
        value = self.session.scalar(statement)
        return as_date(value) if value is not None else None

    def billed_by_workload(
        self, ranges: dict[str, tuple[date, date]], ids: Sequence[int] | None = None
    ) -> dict[str, dict[int | None, Decimal]]:
        """{range name: {workload id: billed sum}} over the scope (or only `ids`); one scan
        when the ranges are close together, one per range when they are far apart."""
        result: dict[str, dict[int | None, Decimal]] = {name: {} for name in ranges}
        start = min(r[0] for r in ranges.values())
        end = max(r[1] for r in ranges.values())
        covered = sum((r[1] - r[0]).days + 1 for r in ranges.values())
        if (end - start).days + 1 > 2 * covered:
            for name, (r_start, r_end) in ranges.items():
                result[name] = self.billed_by_workload({name: (r_start, r_end)}, ids)[name]
            return result
        names = list(ranges)
        sums = [
            _sum_within(CostFact.cost, CostFact.day, r[0], r[1], start, end, inclusive=True)
            for r in ranges.values()
        ]
        statement = (
            select(CostFact.workload_id, *sums)
            .where(*self.cost_where(start, end))
            .group_by(CostFact.workload_id)
        )
        if ids is not None:
            statement = statement.where(CostFact.workload_id.in_(list(ids)))
        for workload_id, *values in self._rows(statement):
            for name, value in zip(names, values, strict=True):
                if value is not None:
                    result[name][workload_id] = Decimal(value)
        return result

    def billed_total(self, start: date, end: date) -> Decimal:
        """The scope's billed cost in [start, end], one number."""
        value = self.session.scalar(
            select(func.sum(CostFact.cost)).where(*self.cost_where(start, end))
        )
        return Decimal(value or 0)

    def billed_workloads_on(self, day: date) -> set[int | None]:
        """The workloads (None: unattributed) with billed cost on `day`. Deduplicated here:
        DISTINCT would make SQLite walk the workload-first index instead of one day's range."""
        statement = select(CostFact.workload_id).where(*self.cost_where(day, day))
        return set(self._rows(statement).scalars())

    def billed_by_day(self, start: date, end: date, ids: Sequence[int] | None = None):
        """{(workload id, day): billed}, for `ids` (default: the whole scope, summed)."""
        if ids is not None:
            statement = (
                select(CostFact.workload_id, CostFact.day, func.sum(CostFact.cost))
                .where(*self.cost_where(start, end), CostFact.workload_id.in_(list(ids)))
                .group_by(CostFact.workload_id, CostFact.day)
            )
            return {
                (wid, as_date(day)): Decimal(value) for wid, day, value in self._rows(statement)
            }
        statement = (
            select(CostFact.day, func.sum(CostFact.cost))
            .where(*self.cost_where(start, end))
            .group_by(CostFact.day)
        )
        return {(None, as_date(day)): Decimal(v) for day, v in self._rows(statement)}

    def estimated_by_day(self, start: date, end: date) -> dict[tuple[int | None, date], Decimal]:
        """{(workload id, day): token-based estimate} over the scope.

        The usual window is the day or two billing lags behind: then one sum per day over
        plain comparisons of `hour` (an index-only scan); a long window groups by the day."""
        days = _daterange(start, end)
        if len(days) > 7:
            day = self.usage_day()
            statement = (
                select(UsageFact.workload_id, day, func.sum(UsageFact.estimated_cost))
                .where(*self.usage_where(start, end), UsageFact.estimated_cost.is_not(None))
                .group_by(UsageFact.workload_id, day)
            )
            return {
                (wid, as_date(d)): Decimal(value)
                for wid, d, value in self._rows(statement)
                if value is not None
            }
        sums = [
            _sum_within(
                UsageFact.estimated_cost,
                UsageFact.hour,
                start_of_day(d),
                end_of_day(d),
                start_of_day(start),
                end_of_day(end),
                inclusive=False,
            )
            for d in days
        ]
        statement = (
            select(UsageFact.workload_id, *sums)
            .where(*self.usage_where(start, end))
            .group_by(UsageFact.workload_id)
        )
        result: dict[tuple[int | None, date], Decimal] = {}
        for wid, *values in self._rows(statement):
            for d, value in zip(days, values, strict=True):
                if value is not None:
                    result[(wid, d)] = Decimal(value)
        return result

    def estimated_by_workload(
        self, start: date, end: date, ids: Sequence[int] | None = None
    ) -> dict[int | None, Decimal]:
        statement = (
            select(UsageFact.workload_id, func.sum(UsageFact.estimated_cost))
            .where(*self.usage_where(start, end), UsageFact.estimated_cost.is_not(None))
            .group_by(UsageFact.workload_id)
        )
        if ids is not None:
            statement = statement.where(UsageFact.workload_id.in_(list(ids)))
        return {wid: Decimal(v) for wid, v in self._rows(statement) if v is not None}

    def usage_totals(
        self, ids: Sequence[int], ranges: dict[str, tuple[date, date]]
    ) -> dict[tuple[int, str], dict[str, float]]:
        """{(workload id, range name): {input_tokens, output_tokens, requests, errors,
        throttles, first_day}}; errors are client plus server errors, `first_day` the first
        day with usage in the range (the metrics may cover less than the range)."""
        result: dict[tuple[int, str], dict[str, float]] = {}
        if not ids:
            return result
        for name, (start, end) in ranges.items():
            statement = (
                select(
                    UsageFact.workload_id,
                    func.sum(UsageFact.input_tokens),
                    func.sum(UsageFact.output_tokens),
                    func.sum(UsageFact.invocations),
                    func.sum(UsageFact.client_errors + UsageFact.server_errors),
                    func.sum(UsageFact.throttles),
                    func.min(UsageFact.hour),
                )
                .where(*self.usage_where(start, end), UsageFact.workload_id.in_(list(ids)))
                .group_by(UsageFact.workload_id)
            )
            for wid, inputs, outputs, calls, errors, throttles, first in self._rows(statement):
                result[(wid, name)] = {
                    "input_tokens": float(inputs or 0),
                    "output_tokens": float(outputs or 0),
                    "requests": float(calls or 0),
                    "errors": float(errors or 0),
                    "throttles": float(throttles or 0),
                    "first_day": as_date(first),
                }
        return result

    def upstream_totals(
        self, ids: Sequence[int], ranges: dict[str, tuple[date, date]]
    ) -> dict[tuple[int, str], float]:
        result: dict[tuple[int, str], float] = {}
        if not ids:
            return result
        for name, (start, end) in ranges.items():
            statement = (
                select(UpstreamFact.workload_id, func.sum(UpstreamFact.requests))
                .where(
                    UpstreamFact.hour >= start_of_day(start),
                    UpstreamFact.hour < end_of_day(end),
                    UpstreamFact.workload_id.in_(list(ids)),
                )
                .group_by(UpstreamFact.workload_id)
            )
            if self.known_at is not None:
                statement = statement.where(UpstreamFact.collected_at < self.known_at)
            for wid, requests in self._rows(statement):
                result[(wid, name)] = float(requests or 0)
        return result

    def provisional_days(self, start: date, end: date) -> list[date]:
        """The days in [start, end] whose counted Cost Explorer figures it marks `Estimated`
        (not final yet)."""
        conditions = [
            CostFact.day >= start,
            CostFact.day <= end,
            CostFact.source == "cost_explorer",
            self._scope(CostFact.workload_id),
            ledger_billed(),
            CostFact.dimensions["estimated"].as_boolean(),
        ]
        if self.known_at is not None:
            conditions.append(CostFact.collected_at < self.known_at)
        statement = select(CostFact.day).where(*conditions).group_by(CostFact.day)
        return sorted(as_date(day) for day in self._rows(statement).scalars())

    def adjustments(self, start: date, end: date) -> dict[str, Decimal]:
        """The scope's LLM adjustments (credit, refund, tax, ...) in [start, end], by kind."""
        conditions = [
            CostFact.day >= start,
            CostFact.day <= end,
            self._scope(CostFact.workload_id),
            billed_adjustment(),
        ]
        if self.known_at is not None:
            conditions.append(CostFact.collected_at < self.known_at)
        statement = (
            select(CostFact.charge_kind, func.sum(CostFact.cost))
            .where(*conditions)
            .group_by(CostFact.charge_kind)
        )
        return {kind: Decimal(value) for kind, value in self._rows(statement) if value is not None}

    def unattributed(self, start: date, end: date, lag_start: date | None) -> Decimal:
        """Spend in [start, end] no workload claims: billed, plus estimates after the bill."""
        billed = self.session.scalar(
            select(func.sum(CostFact.cost)).where(
                CostFact.day >= start,
                CostFact.day <= end,
                CostFact.workload_id.is_(None),
                billed_usage(),
                *([CostFact.collected_at < self.known_at] if self.known_at else []),
            )
        )
        total = Decimal(billed or 0)
        if lag_start is not None and lag_start <= end:
            estimate = self.session.scalar(
                select(func.sum(UsageFact.estimated_cost)).where(
                    UsageFact.hour >= start_of_day(max(start, lag_start)),
                    UsageFact.hour < end_of_day(end),
                    UsageFact.workload_id.is_(None),
                    *([UsageFact.collected_at < self.known_at] if self.known_at else []),
                )
            )
            total += Decimal(estimate or 0)
        return total

    def open_alerts(self, limit: int) -> tuple[list[Alert], int, dict[int, int]]:
        """The scope's unresolved alerts (worst first), how many there are, and per workload."""
        if self.known_at is None:
            open_now: ColumnElement = Alert.status.in_(UNRESOLVED_STATUSES)
        else:  # open at the time: seen by then, not resolved by then
            open_now = and_(
                Alert.first_seen_at < self.known_at,
                or_(Alert.resolved_at.is_(None), Alert.resolved_at >= self.known_at),
            )
        scope = self._scope(Alert.workload_id) if self.ids is not None else literal(True)
        counts = dict(
            self._rows(
                select(Alert.workload_id, func.count())
                .where(open_now, scope)
                .group_by(Alert.workload_id)
            ).all()
        )
        severity_order = case(
            (Alert.severity == "critical", 0), (Alert.severity == "warning", 1), else_=2
        )
        alerts = self.session.scalars(
            select(Alert)
            .where(open_now, scope)
            .order_by(severity_order, Alert.amount.desc(), Alert.id)
            .limit(limit)
        ).all()
        return (
            list(alerts),
            sum(counts.values()),
            {k: v for k, v in counts.items() if k is not None},
        )


# ---- the answer ------------------------------------------------------------------------
class Spend:
    """Billed sums per named range and workload, plus the token estimates per (workload,
    day) for the days after the last billed day. Totals are billed plus estimated."""

    def __init__(
        self,
        ranges: dict[str, tuple[date, date]],
        billed: dict[str, dict[int | None, Decimal]],
        estimates: dict[tuple[int | None, date], Decimal],
        lag_start: date,
    ):
        self.ranges = ranges
        self.billed = billed
        self.estimates = estimates
        self.lag_start = lag_start
        by_day: dict[date, list[tuple[int | None, Decimal]]] = defaultdict(list)
        for (wid, day), value in estimates.items():  # the few lagging days
            by_day[day].append((wid, value))
        # Ranges that hold the same lagging days (the period and the month, usually) have the
        # same estimates: summed once, shared (read only).
        summed: dict[tuple[date, ...], dict[int | None, Decimal]] = {}
        self._estimated: dict[str, dict[int | None, Decimal]] = {}
        for name, (first, last) in ranges.items():
            days = tuple(day for day in sorted(by_day) if first <= day <= last)
            if days not in summed:
                sums: dict[int | None, Decimal] = {}
                for day in days:
                    for wid, value in by_day[day]:
                        sums[wid] = sums.get(wid, ZERO) + value
                summed[days] = sums
            self._estimated[name] = summed[days]
        self._by_workload: dict[int | None, list[tuple[date, Decimal]]] | None = None
        # Totals computed once: ranking thousands of workloads reads them many times.
        self._total: dict[str, dict[int | None, Decimal]] = {}
        for name in ranges:
            self._sum_up(name)

    def _sum_up(self, name: str) -> None:
        totals = dict(self.billed[name])
        for wid, value in self._estimated[name].items():
            totals[wid] = totals.get(wid, ZERO) + value
        self._total[name] = totals

    def set_billed(self, name: str, billed: dict[int | None, Decimal]) -> None:
        """Replace one range's billed sums (and its totals)."""
        self.billed = {**self.billed, name: billed}
        self._sum_up(name)

    def estimated(self, name: str, wid: int | None) -> Decimal:
        return self._estimated[name].get(wid, ZERO)

    def estimates_of(self, name: str) -> dict[int | None, Decimal]:
        """{workload id: token estimate} of a range."""
        return self._estimated[name]

    def total(self, name: str, wid: int | None) -> Decimal:
        return self._total[name].get(wid, ZERO)

    def totals(self, name: str) -> dict[int | None, Decimal]:
        """{workload id: total} of a range (absent: nothing spent)."""
        return self._total[name]

    def estimated_between(self, wid: int | None, start: date, end: date) -> Decimal:
        if self._by_workload is None:  # only a few detail workloads ask: built on first use
            self._by_workload = defaultdict(list)
            for (owner, day), value in self.estimates.items():
                self._by_workload[owner].append((day, value))
        return sum((v for day, v in self._by_workload.get(wid, ()) if start <= day <= end), ZERO)


def build_cost_report(
    session: Session,
    request: CostRequest,
    *,
    caller: str | None = None,
    detail_limit: int | None = DEFAULT_DETAIL_LIMIT,
    findings_limit: int = 10,
    with_chart: bool = True,
) -> CostReport:
    """Everything `/llm-cost` answers, as data.

    Totals are exact for the whole scope. The per-workload detail (projection, unit
    economics, the split of the change) is computed for the `detail_limit` workloads that
    spent most in the period (None: every workload, as the CLI's JSON and CSV need).
    """
    as_of, period = request.as_of, request.period
    previous = period.previous()
    month_start = as_of.replace(day=1)
    history_start = as_of - timedelta(days=HISTORY_DAYS - 1)
    chart_start = min(history_start, period.start) if period.end == as_of else history_start
    chart_start = max(chart_start, as_of - timedelta(days=MAX_DAYS - 1))
    notes: list[str] = []

    ranges = {
        "current": (period.start, period.end),
        "previous": (previous.start, previous.end),
        "month": (month_start, as_of),
    }
    days = _daterange(min(chart_start, history_start), as_of)
    everything = request.scope.kind == "all"
    # For `all` in Slack (a detail limit), the previous period is summed for the scope and
    # split per workload only for the detailed top spenders: that halves the largest scan.
    sampled = everything and detail_limit is not None
    per_workload = {k: v for k, v in ranges.items() if not (sampled and k == "previous")}
    # `all` scans every workload's billed days (per workload, per day), and its token
    # estimates: the biggest queries of any answer. Each runs on a connection of its own
    # while this one reads the registry, so the database works on them at once.
    engine, known_at = session.get_bind(), request.known_at
    background: dict[str, Future] = {}
    if everything:
        background["billed"] = _BACKGROUND.submit(
            _on_own_connection, engine, known_at, "billed_by_workload", per_workload
        )
        background["daily"] = _BACKGROUND.submit(
            _on_own_connection, engine, known_at, "billed_by_day", days[0], as_of
        )
        if sampled:
            background["previous"] = _BACKGROUND.submit(
                _on_own_connection, engine, known_at, "billed_total", previous.start, previous.end
            )
    facts = FactQuery(session, None, known_at)
    sources = tuple(freshness(session, as_of, known_at))
    warning = data_warning(sources)  # stale: no budget status rests on the missing days
    # Billing freshness: days after the last billed day are covered by token estimates.
    billed_through = facts.billed_through(as_of)
    earliest = min(r[0] for r in ranges.values())
    lag_start = billed_through + timedelta(days=1) if billed_through else earliest
    estimate_from = max(lag_start, min(earliest, chart_start, history_start))
    if everything and estimate_from <= as_of:
        background["estimates"] = _BACKGROUND.submit(
            _on_own_connection, engine, known_at, "estimated_by_day", estimate_from, as_of
        )

    infos = resolve_scope(session, request.scope, caller)
    by_id = {info.id: info for info in infos}
    facts = FactQuery(session, None if everything else list(by_id), known_at)
    has_scope = everything or bool(infos)
    if "estimates" in background:
        estimates = background["estimates"].result()
    elif has_scope and estimate_from <= as_of:
        estimates = facts.estimated_by_day(estimate_from, as_of)
    else:
        estimates = {}
    expected = facts.billed_workloads_on(billed_through) if billed_through and has_scope else set()
    if everything:
        billed, billed_daily = background["billed"].result(), background["daily"].result()
    elif has_scope:
        billed, billed_daily = facts.billed_by_workload(ranges), facts.billed_by_day(days[0], as_of)
    else:
        billed, billed_daily = {name: {} for name in ranges}, {}
    billed.setdefault("previous", {})
    spend = Spend(ranges, billed, estimates, lag_start)

    current, month, before = (
        spend.totals("current"),
        spend.totals("month"),
        spend.totals("previous"),
    )
    rows = sorted(infos, key=lambda i: (-current.get(i.id, ZERO), -month.get(i.id, ZERO), i.slug))
    detail = rows if detail_limit is None else rows[:detail_limit]
    if sampled:  # the previous period of the detailed workloads, and of the scope
        detail_previous = facts.billed_by_workload(
            {"previous": ranges["previous"]}, ids=[i.id for i in detail]
        )["previous"]
        spend.set_billed("previous", detail_previous)
        before = spend.totals("previous")
    alerts, alerts_total, alert_counts = facts.open_alerts(findings_limit)
    forecasts = _forecast_workloads(facts, detail, history_start, as_of, spend)
    units = _unit_economics(facts, detail, ranges, spend)
    estimated_now = spend.estimates_of("current")
    detail_ids = {info.id for info in detail}
    no_forecast = (None, None, None)
    limits = load_thresholds(session)
    overrides = _threshold_overrides(session, [i.id for i in rows if i.budget is not None])
    workload_costs = []
    for info in rows:
        projection, exhausted, earliest_exhausted = forecasts.get(info.id, no_forecast)
        own_limits = (
            for_workload(limits, info.slug, overrides[info.id]) if info.id in overrides else limits
        )
        workload_costs.append(
            WorkloadCost(
                workload=info,
                total=current.get(info.id, ZERO),
                estimated=estimated_now.get(info.id, ZERO),
                previous=before.get(info.id, ZERO)
                if not sampled or info.id in detail_ids
                else None,
                month_to_date=month.get(info.id, ZERO),
                projected_month_end=projection,
                budget_exhausted_on=exhausted,
                budget_exhausted_earliest=earliest_exhausted,
                unit=units.get((info.id, "current")),
                open_alerts=alert_counts.get(info.id, 0),
                budget_status=_status(
                    info.budget,
                    month.get(info.id, ZERO),
                    projection,
                    own_limits,
                    stale=warning is not None,
                ),
            )
        )

    # Scope totals; for `all` every total counts, the spend no workload claims (None) too.
    def scope_sum(values: dict[int | None, Decimal]) -> Decimal:
        if everything:
            return sum(values.values(), ZERO)
        return sum((values.get(k, ZERO) for k in by_id), ZERO)

    total = scope_sum(current)
    estimated_total = scope_sum(estimated_now)
    month_to_date = scope_sum(month)
    if sampled:
        previous_total = background["previous"].result() + scope_sum(spend.estimates_of("previous"))
    else:
        previous_total = scope_sum(before)
    if everything:
        unattributed = spend.total("current", None)
    else:
        unattributed = FactQuery(session, None, request.known_at).unattributed(
            period.start, period.end, lag_start
        )

    scope_budget, budget_note = _scope_budget(infos, spend, everything)
    if budget_note:
        notes.append(budget_note)

    # The scope's daily series: the chart's history and the scope's own projection.
    daily, known = _scope_series(days, billed_daily, spend, expected, None if everything else by_id)
    if as_of >= today_utc():  # today is not over: a partial day would pull the projection down
        known[-1] = False
    scope_forecast = economics_forecast(
        np.array([[float(v) for v in daily]]),
        np.array(days, dtype="datetime64[D]"),
        None if scope_budget is None else float(scope_budget),
        np.array([known]),
    )
    projection, exhausted_on, exhausted_earliest = _projection_of(scope_forecast, 0)
    if not has_scope:
        projection = None

    billing = _billing(
        facts, billed_through, period, lag_start, estimated_total, by_id, [i.id for i in detail]
    )
    change = _change(
        detail if sampled else rows, detail, previous, spend, units, previous_total, total
    )
    if change is not None and sampled and len(rows) > len(detail):
        change = replace(change, movers_among=len(detail))
    chart = None
    if with_chart and has_scope:
        offset = len(days) - ((as_of - chart_start).days + 1)
        chart = _chart_series(
            days[offset:],
            daily[offset:],
            [day >= lag_start for day in days[offset:]],
            as_of,
            month_to_date,
            scope_forecast,
            scope_budget,
        )
    slug_of = {info.id: info.slug for info in infos}
    findings = tuple(
        FindingView(
            kind=a.kind,
            severity=a.severity,
            status=a.status,
            workload=slug_of.get(a.workload_id) if a.workload_id else None,
            message=a.message,
            amount=a.amount,
            currency=a.currency,
        )
        for a in alerts
    )
    if billed_through is None and has_scope:
        notes.append("No billed cost has arrived yet: every figure is a token-based estimate.")
    provisional = facts.provisional_days(period.start, period.end) if has_scope else []
    if provisional:
        first, last = provisional[0], provisional[-1]
        notes.append(
            f"Cost Explorer marks {len(provisional)} day(s) from {first:%-d %b} to "
            f"{last:%-d %b} as estimated: those figures may still change."
        )
    if warning is not None:
        change = None  # a trend over missing days would read as spend falling
    return CostReport(
        request=request,
        scope_label=request.scope.describe(),
        currency=organisation_currency(session),
        period=period,
        total=total,
        billed=total - estimated_total,
        estimated=estimated_total,
        unattributed=unattributed,
        month_to_date=month_to_date,
        projection=projection,
        budget=scope_budget,
        budgeted_workloads=sum(1 for info in infos if info.budget is not None),
        budget_exhausted_on=exhausted_on if scope_budget is not None else None,
        budget_exhausted_earliest=exhausted_earliest if scope_budget is not None else None,
        billing=billing,
        workloads=tuple(workload_costs),
        unit=_scope_unit(detail, rows, units),
        change=change,
        findings=findings,
        findings_total=alerts_total,
        chart=chart,
        notes=tuple(notes),
        adjustments=facts.adjustments(period.start, period.end) if has_scope else {},
        limits=limits,
        freshness=sources,
        data_warning=warning,
        provisional_days=tuple(provisional),
    )


def _threshold_overrides(session: Session, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The workloads among `ids` with thresholds of their own (few: read in one query)."""
    if not ids:
        return {}
    rows = session.execute(
        select(Workload.id, Workload.thresholds).where(Workload.thresholds.is_not(None))
    ).all()
    wanted = set(ids)
    return {wid: dict(values) for wid, values in rows if values and wid in wanted}


def _scope_series(
    days: Sequence[date],
    billed_daily: dict[tuple[int | None, date], Decimal],
    spend: Spend,
    expected: set[int | None],
    in_scope: dict[int, WorkloadInfo] | None,
) -> tuple[list[Decimal], list[bool]]:
    """The scope's spend per day (billed, else estimated) and which days are known.

    An unbilled day is known only when every workload billed on the last billed day has an
    estimate for it (a self-hosted fleet has none); the core fills unknown days instead of
    reading them as zero."""
    estimated: dict[date, Decimal] = defaultdict(Decimal)
    estimated_ids: dict[date, set[int | None]] = defaultdict(set)
    for (wid, day), value in spend.estimates.items():
        if in_scope is None or wid in in_scope:
            estimated[day] += value
            estimated_ids[day].add(wid)
    daily = [billed_daily.get((None, day), ZERO) + estimated.get(day, ZERO) for day in days]
    known = [day < spend.lag_start or expected <= estimated_ids.get(day, set()) for day in days]
    return daily, known


_BACKGROUND = ThreadPoolExecutor(max_workers=4, thread_name_prefix="llm-cost")


def _on_own_connection(engine, known_at: datetime | None, query: str, *args: Any):
    """`FactQuery(...).<query>(*args)` over every workload, in a session of its own (SQLite
    in WAL mode and PostgreSQL both serve concurrent readers)."""
    with Session(engine) as session:
        if engine.dialect.name == "postgresql":
            # JIT compiling these scans costs more (~40 ms) than it saves at this size
            session.execute(sql_text("SET LOCAL jit = off"))
        return getattr(FactQuery(session, None, known_at), query)(*args)


def _scope_budget(
    infos: Sequence[WorkloadInfo], spend: Spend, everything: bool
) -> tuple[Decimal | None, str | None]:
    """The scope's monthly budget: the sum of its workloads' budgets, but only when every
    workload that spends this month has one (otherwise the comparison would be unfair)."""
    budgets = [info.budget for info in infos if info.budget is not None]
    if not budgets:
        return None, None
    month = spend.totals("month")
    spending = [info for info in infos if month.get(info.id)]
    unbudgeted = [info for info in spending if info.budget is None]
    if len(infos) == 1:
        return budgets[0], None
    if everything and spend.total("month", None):
        return None, "Spend no workload claims has no budget, so the whole has none either."
    if unbudgeted:
        return None, (
            f"{len(unbudgeted)} of the {len(spending)} workloads spending this month have no "
            "budget, so the scope has no total budget; each row shows its own."
        )
    return sum(budgets, Decimal(0)), None


def economics_forecast(cost: np.ndarray, days: np.ndarray, budgets, known=None):
    return forecast(cost, days, budgets=budgets, known=known)


def _money(value: float) -> Decimal:
    return Decimal(repr(float(value))).quantize(Decimal("0.01"))


def _nat_to_date(value: np.datetime64) -> date | None:
    if np.isnat(value):
        return None
    return value.astype("datetime64[D]").item()


def _projection_of(result, row: int) -> tuple[Range, date | None, date | None]:
    projection = Range(
        point=_money(result.month_end[row]),
        low=_money(result.month_end_low[row]),
        high=_money(result.month_end_high[row]),
    )
    return (
        projection,
        _nat_to_date(result.exhaustion_date[row]),
        _nat_to_date(result.exhaustion_date_earliest[row]),
    )


def _forecast_workloads(
    facts: FactQuery,
    detail: Sequence[WorkloadInfo],
    start: date,
    as_of: date,
    spend: Spend,
) -> dict[int, tuple[Range, date | None, date | None]]:
    """Month-end projections of the detail workloads, in one vectorised pass of the core.
    Unbilled days without an estimate are marked unknown, not zero."""
    if not detail:
        return {}
    ids = [info.id for info in detail]
    position = {wid: i for i, wid in enumerate(ids)}
    days = _daterange(start, as_of)
    column = {day: j for j, day in enumerate(days)}
    matrix = np.zeros((len(ids), len(days)))
    known = np.ones((len(ids), len(days)), dtype=bool)
    lag_column = column.get(spend.lag_start)
    if lag_column is not None:
        known[:, lag_column:] = False
    for (wid, day), value in facts.billed_by_day(start, as_of, ids).items():
        matrix[position[wid], column[day]] += float(value)
    for (wid, day), value in spend.estimates.items():
        if wid in position and day in column:
            matrix[position[wid], column[day]] += float(value)
            known[position[wid], column[day]] = True
    if as_of >= today_utc():  # today is not over: its few hours are not a day's spend
        known[:, -1] = False
    budgets = np.array([float(i.budget) if i.budget is not None else np.nan for i in detail])
    result = economics_forecast(matrix, np.array(days, dtype="datetime64[D]"), budgets, known)
    return {wid: _projection_of(result, position[wid]) for wid in ids}


def _unit_economics(
    facts: FactQuery,
    detail: Sequence[WorkloadInfo],
    ranges: dict[str, tuple[date, date]],
    spend: Spend,
) -> dict[tuple[int, str], UnitEconomics]:
    """Unit costs of the detail workloads in the current and previous periods.

    Cost and usage must cover the same days: where the usage metrics start after the period
    does (CloudWatch keeps hourly data for weeks, not months), the current period's unit
    costs use the cost of the covered days only, and the previous period has none.
    """
    ids = [info.id for info in detail]
    wanted = {name: ranges[name] for name in ("current", "previous")}
    usage = facts.usage_totals(ids, wanted)
    upstream = facts.upstream_totals(ids, wanted)
    partial: dict[date, list[int]] = defaultdict(list)
    for (wid, name), measured in usage.items():
        if name == "current" and measured["first_day"] > wanted["current"][0]:
            partial[measured["first_day"]].append(wid)
    partial_cost: dict[int, Decimal] = {}
    end = wanted["current"][1]
    for first_day, wids in partial.items():
        billed = facts.billed_by_workload({"covered": (first_day, end)}, wids)["covered"]
        for wid in wids:
            partial_cost[wid] = billed.get(wid, Decimal(0)) + spend.estimated_between(
                wid, first_day, end
            )
    result = {}
    for (wid, name), measured in usage.items():
        start = wanted[name][0]
        covered = measured["first_day"] <= start
        if not covered and name == "previous":
            continue
        result[(wid, name)] = UnitEconomics(
            cost=spend.total(name, wid) if covered else partial_cost[wid],
            input_tokens=measured["input_tokens"],
            output_tokens=measured["output_tokens"],
            requests=measured["requests"],
            errors=measured["errors"],
            throttles=measured["throttles"],
            upstream_requests=upstream.get((wid, name), 0.0),
            since=None if covered else measured["first_day"],
        )
    return result


def _scope_unit(
    detail: Sequence[WorkloadInfo],
    rows: Sequence[WorkloadInfo],
    units: dict[tuple[int, str], UnitEconomics],
) -> UnitEconomics | None:
    """The scope's unit costs: only when the detail covers the whole scope and every part
    was measured over the same days."""
    if not detail or len(detail) != len(rows):
        return None
    parts = [units[(i.id, "current")] for i in detail if (i.id, "current") in units]
    if not parts or len({p.since for p in parts}) != 1:
        return None
    return UnitEconomics(
        cost=sum((p.cost for p in parts), Decimal(0)),
        input_tokens=sum(p.input_tokens for p in parts),
        output_tokens=sum(p.output_tokens for p in parts),
        requests=sum(p.requests for p in parts),
        errors=sum(p.errors for p in parts),
        throttles=sum(p.throttles for p in parts),
        upstream_requests=sum(p.upstream_requests for p in parts),
        since=parts[0].since,
    )


def _billing(
    facts: FactQuery,
    billed_through: date | None,
    period: Period,
    lag_start: date,
    estimated: Decimal,
    by_id: dict[int, WorkloadInfo],
    detail_ids: Sequence[int],
) -> Billing:
    """Billing freshness, and the token estimate's drift from the bill over recent billed days.

    Only workloads that have estimates in the window are compared (self-hosted fleets have a
    bill and no token estimate), so the two sums cover the same spend.
    """
    estimated_days = max(0, (period.end - max(lag_start, period.start)).days + 1)
    if billed_through is None:
        return Billing(None, estimated_days, estimated, None, None, None)
    window = (billed_through - timedelta(days=DRIFT_WINDOW_DAYS - 1), billed_through)
    # A week of hourly metrics for thousands of workloads is millions of rows: past
    # DRIFT_SCOPE_LIMIT workloads the drift is measured on the top spenders (most of the money).
    sample = None
    large = facts.ids is None or len(facts.ids) > DRIFT_SCOPE_LIMIT
    if large and len(detail_ids) < len(by_id):
        sample = list(detail_ids)
    found = facts.estimated_by_workload(*window, ids=sample)
    estimates = {wid: v for wid, v in found.items() if v > 0}
    if facts.ids is not None:
        estimates = {wid: v for wid, v in estimates.items() if wid in by_id}
    if not estimates:
        return Billing(billed_through, estimated_days, estimated, window, None, None)
    billed = facts.billed_by_workload({"drift": window}, ids=list(estimates))["drift"]
    return Billing(
        billed_through,
        estimated_days,
        estimated,
        window,
        sum((billed.get(wid, Decimal(0)) for wid in estimates), Decimal(0)),
        sum(estimates.values(), Decimal(0)),
        len(estimates) if sample is not None else None,
    )


def _change(
    rows: Sequence[WorkloadInfo],
    detail: Sequence[WorkloadInfo],
    previous_period: Period,
    spend: Spend,
    units: dict[tuple[int, str], UnitEconomics],
    previous_total: Decimal,
    current_total: Decimal,
) -> Change | None:
    """The change from the previous period, split into LMDI effects over the detail
    workloads (economics.decompose); the change of the rest is one `other_workloads` effect."""
    if not previous_total and not current_total:
        return None
    current, before = spend.totals("current"), spend.totals("previous")
    changes = [(info.slug, current.get(info.id, ZERO) - before.get(info.id, ZERO)) for info in rows]
    movers = heapq.nsmallest(5, (c for c in changes if c[1]), key=lambda c: (-abs(c[1]), c[0]))

    def totals(name: str) -> PeriodTotals:
        measured = [units.get((info.id, name)) for info in detail]
        # Usage that does not cover the whole period cannot explain it: leave it out.
        measured = [u if u is not None and u.since is None else None for u in measured]
        return PeriodTotals(
            cost=np.array([float(spend.total(name, info.id)) for info in detail]),
            requests=np.array([u.requests if u else 0.0 for u in measured]),
            errors=np.array([u.errors if u else 0.0 for u in measured]),
            tokens=np.array([u.tokens if u else 0.0 for u in measured]),
        )

    amounts: dict[str, Decimal] = {name: Decimal(0) for name in EFFECTS}
    if detail:
        result = decompose(totals("previous"), totals("current"))
        amounts = {name: _money(np.sum(getattr(result, name))) for name in EFFECTS}
    detail_change = sum(
        (spend.total("current", i.id) - spend.total("previous", i.id) for i in detail), Decimal(0)
    )
    amounts["other_workloads"] = _cents(current_total - previous_total - detail_change)
    # Rounding each effect to cents may leave a cent or two: give it to the largest effect,
    # so the effects shown add up to the change shown.
    residual = _cents(current_total - previous_total) - sum(amounts.values(), Decimal(0))
    if residual:
        largest = max(amounts, key=lambda name: abs(amounts[name]))
        amounts[largest] += residual
    return Change(
        previous_period=previous_period,
        previous=previous_total,
        current=current_total,
        effects=tuple(Effect(name, amount) for name, amount in amounts.items() if amount),
        movers=tuple(movers),
        explained_workloads=len(detail),
    )


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"))


def _chart_series(
    days: Sequence[date],
    daily: Sequence[Decimal],
    estimated: Sequence[bool],
    as_of: date,
    month_to_date: Decimal,
    result,
    budget: Decimal | None,
) -> ChartSeries:
    """History bars, and this month's cumulative spend with the projection and its range.

    The core gives the range at month end; in between, the band widens with the square root
    of the days ahead (how the spread of a sum of daily noise grows).
    """
    month_start = as_of.replace(day=1)
    month_end = month_start.replace(day=calendar.monthrange(as_of.year, as_of.month)[1])
    month_days = _daterange(month_start, month_end)
    by_day = dict(zip(days, daily, strict=True))
    actual: list[float | None] = []
    running = 0.0
    for day in month_days:
        if day <= as_of:
            running += float(by_day.get(day, 0))
            actual.append(running)
        else:
            actual.append(None)
    remaining = (month_end - as_of).days
    point: list[float | None] = [None] * len(month_days)
    low: list[float | None] = [None] * len(month_days)
    high: list[float | None] = [None] * len(month_days)
    if remaining > 0:
        # Start from the core's month-to-date (unknown days filled) so the band ends where
        # the projection says, then draw it from the actual month-to-date.
        path = np.cumsum(result.daily_path[0, :remaining])
        base = float(result.month_end[0]) - float(path[-1])
        up = float(result.month_end_high[0] - result.month_end[0])
        down = float(result.month_end[0] - result.month_end_low[0])
        offset = len(month_days) - remaining
        for k in range(remaining):
            share = ((k + 1) / remaining) ** 0.5
            value = base + float(path[k])
            point[offset + k] = value
            low[offset + k] = max(value - down * share, float(month_to_date))
            high[offset + k] = value + up * share
    return ChartSeries(
        days=tuple(days),
        daily=tuple(float(v) for v in daily),
        estimated=tuple(estimated),
        month_days=tuple(month_days),
        month_actual=tuple(actual),
        projection=tuple(point),
        projection_low=tuple(low),
        projection_high=tuple(high),
        budget=float(budget) if budget is not None else None,
    )


# ---- JSON (the contract of `llmgov cost --format json`) ---------------------------------
def _range_json(value: Range | None) -> dict[str, float | None] | None:
    if value is None:
        return None
    return {"point": cents(value.point), "low": cents(value.low), "high": cents(value.high)}


def _unit_json(unit: UnitEconomics | None) -> dict[str, Any] | None:
    if unit is None:
        return None
    return {
        "since": unit.since.isoformat() if unit.since else None,
        "cost": cents(unit.cost),
        "input_tokens": unit.input_tokens,
        "output_tokens": unit.output_tokens,
        "requests": unit.requests,
        "upstream_requests": unit.upstream_requests or None,
        "cost_per_1k_tokens": _float(unit.per_1k_tokens),
        "cost_per_request": _float(unit.per_request),
        "cost_per_upstream_request": _float(unit.per_upstream_request),
        "tokens_per_request": unit.tokens_per_request,
        "calls_per_upstream_request": unit.calls_per_upstream_request,
        "retry_share": unit.retry_share,
    }


def _float(value: Decimal | None, places: int = 6) -> float | None:
    """Unit costs are fractions of a cent: keep six decimals, not two."""
    return None if value is None else round(float(value), places)


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def report_to_json(report: CostReport) -> dict[str, Any]:
    """Money as numbers rounded to cents, dates as ISO strings (DESIGN.md §4)."""
    request = report.request
    change = report.change
    billing = report.billing
    return {
        "scope": request.scope.token() or "mine",
        "scope_kind": request.scope.kind,
        "period": {
            "label": report.period.label,
            "start": report.period.start.isoformat(),
            "end": report.period.end.isoformat(),
        },
        "as_of": request.as_of.isoformat(),
        "currency": report.currency,
        "total": cents(report.total),
        "billed": cents(report.billed),
        "estimated": cents(report.estimated),
        "unattributed": cents(report.unattributed),
        # missing is not $0: no month-to-date when the data stops before the month began
        "month_to_date": None
        if report.stale and not report.month_to_date
        else cents(report.month_to_date),
        "projected_month_end": _range_json(report.projection),
        "budget": cents(report.budget),
        "budget_status": report.budget_status,
        "budget_exhausted_on": _day(report.budget_exhausted_on),
        "adjustments": {kind: cents(amount) for kind, amount in sorted(report.adjustments.items())},
        "provisional_days": [day.isoformat() for day in report.provisional_days],
        "freshness": [source.to_json() for source in report.freshness],
        "data_warning": report.data_warning,
        "billing": {
            "billed_through": _day(billing.billed_through),
            "estimated_days": billing.estimated_days,
            "estimated": cents(billing.estimated),
            "drift": None
            if billing.drift_window is None or billing.drift_billed is None
            else {
                "start": billing.drift_window[0].isoformat(),
                "end": billing.drift_window[1].isoformat(),
                "billed": cents(billing.drift_billed),
                "estimated": cents(billing.drift_estimated),
                "percent": billing.drift_percent,
                "top_workloads": billing.drift_sample,
            },
        },
        "change": None
        if change is None
        else {
            "previous_period": {
                "start": change.previous_period.start.isoformat(),
                "end": change.previous_period.end.isoformat(),
            },
            "previous": cents(change.previous),
            "delta": cents(change.delta),
            "percent": change.percent,
            "effects": {effect.name: cents(effect.amount) for effect in change.effects},
            "movers": [{"slug": slug, "change": cents(delta)} for slug, delta in change.movers],
            "movers_among_top": change.movers_among,
        },
        "unit_economics": _unit_json(report.unit),
        "workloads": [
            {
                "slug": row.workload.slug,
                "name": row.workload.name,
                "owner": row.workload.owner_id,
                "owner_name": row.workload.owner_label,
                "owner_active": row.workload.owner_active,
                "team": row.workload.team,
                "feature": row.workload.feature,
                "customer": row.workload.customer,
                "platform": row.workload.platform,
                "status": row.workload.status,
                "total": cents(row.total),
                "estimated": cents(row.estimated),
                "previous": cents(row.previous),
                "month_to_date": cents(row.month_to_date),
                "projected_month_end": _range_json(row.projected_month_end),
                "budget": cents(row.workload.budget),
                "budget_exhausted_on": _day(row.budget_exhausted_on),
                "budget_exhausted_earliest": _day(row.budget_exhausted_earliest),
                "budget_status": row.budget_status,
                "open_alerts": row.open_alerts,
                "gaps": gap_kinds(row.workload.gaps()),
                "unit_economics": _unit_json(row.unit),
            }
            for row in report.workloads
        ],
        "findings": [
            {
                "kind": f.kind,
                "severity": f.severity,
                "status": f.status,
                "workload": f.workload,
                "amount": cents(f.amount),
                "currency": f.currency,
                "message": f.message,
            }
            for f in report.findings
        ],
        "findings_total": report.findings_total,
        "notes": list(report.notes),
    }

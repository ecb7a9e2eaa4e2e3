"""The ledger's governance rules, one copy each, read by every surface.

- **Budget status** (`budget_status`): what the checks alert on, what `/llm-cost` and the
  digest say about a budget. One of:

  | status | when |
  |---|---|
  | `no_budget` | the workload (or scope) has no monthly budget |
  | `exceeded` | month-to-date spend ≥ the budget |
  | `unknown` | the spend data is stale (its newest day is older than expected): nothing is said of the missing days, so neither "ok" nor a projection-based status |
  | `projected_overrun` | the month-end projection > budget × (1 + `projection_tolerance`) |
  | `at_risk` | month-to-date ≥ `budget_warning_ratio` × budget, or the projection's high end > budget |
  | `ok` | none of the above |

  The checks raise a budget finding exactly for `exceeded` (`budget_exceeded`) and
  `projected_overrun` (`budget_projected_overrun`); `at_risk` is shown where the spend is
  read (`/llm-cost`, the digest), not posted as an alert.

- **Freshness** (`freshness`): for each source of spend, the last day it delivered data
  for (`data_through`), the last time it ran (`last_run`: its last success, else the last
  time it wrote a fact) and whether it is `stale`: its newest data is older than the
  source's expected delay (`EXPECTED_DELAY_DAYS`). A day no source delivered is no data,
  never $0: surfaces say how old the data is at the top, and print no "on track", trend or
  "why it changed" that rests on the missing days (`spend_is_stale`).

The billed facts' rules (charge kinds, one source per account and day, one currency) are in
`models/ledger.py`, below the governance layer, where the queries use them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from llmgov.governance.registry_view import Gap
from llmgov.governance.thresholds import Thresholds
from llmgov.models.facts import CostFact, GpuFact, SourceStatus, UsageFact

NO_BUDGET = "no_budget"
EXCEEDED = "exceeded"
PROJECTED_OVERRUN = "projected_overrun"
AT_RISK = "at_risk"
OK = "ok"
UNKNOWN = "unknown"
BUDGET_STATUSES = (OK, AT_RISK, PROJECTED_OVERRUN, EXCEEDED, NO_BUDGET, UNKNOWN)
# the statuses the checks raise a budget finding for
ALERTED_STATUSES = frozenset({EXCEEDED, PROJECTED_OVERRUN})


def _decimal(value: Decimal | float | None) -> Decimal | None:
    if value is None:
        return None
    return value if isinstance(value, Decimal) else Decimal(repr(float(value)))


def budget_status(
    budget: Decimal | float | None,
    month_to_date: Decimal | float,
    projected: Decimal | float | None,
    projected_high: Decimal | float | None,
    limits: Thresholds,
    *,
    stale: bool = False,
) -> str:
    """The one budget-status rule (see the module docstring). Amounts are compared to the
    cent, so a figure printed equal to the budget reads as reaching it. `stale`: the spend
    data stops days before the day asked about, so only `exceeded` (already spent) can be
    known."""
    budget = _decimal(budget)
    if budget is None or budget <= 0:
        return NO_BUDGET
    cent = Decimal("0.01")
    spent = _decimal(month_to_date).quantize(cent)  # type: ignore[union-attr]
    if spent >= budget:
        return EXCEEDED
    if stale:
        return UNKNOWN
    point = _decimal(projected)
    if point is not None and point.quantize(cent) > budget * (
        1 + Decimal(str(limits.projection_tolerance))
    ):
        return PROJECTED_OVERRUN
    high = _decimal(projected_high)
    if spent >= budget * Decimal(str(limits.budget_warning_ratio)) or (
        high is not None and high.quantize(cent) > budget
    ):
        return AT_RISK
    return OK


# How many days behind the day asked about each source's newest data may be before it is
# stale: billing exports land a day or two late (and CUR 2.0 restates), Cost Explorer lags
# about a day, CloudWatch and the GPU agents are near real time.
EXPECTED_DELAY_DAYS = {
    "focus": 3,
    "cur2": 3,
    "athena": 3,
    "cost_explorer": 2,
}
DEFAULT_DELAY_DAYS = 1
# the sources whose data is spend (billed, or the token estimate)
SPEND_TABLES = (CostFact, UsageFact)


@dataclass(frozen=True)
class Freshness:
    source: str
    data_through: date | None  # the last day this source delivered data for (≤ as_of)
    last_run: datetime | None
    stale: bool
    kind: str  # billed | usage | gpu
    days_old: int | None  # as_of - data_through

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "kind": self.kind,
            "data_through": self.data_through.isoformat() if self.data_through else None,
            "last_run": self.last_run.isoformat() if self.last_run else None,
            "days_old": self.days_old,
            "stale": self.stale,
        }


def _as_date(value) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def freshness(session: Session, as_of: date, known_at: datetime | None = None) -> list[Freshness]:
    """Each source's freshness as of `as_of` (only facts collected before `known_at`, when
    given): billed sources first, then usage, then GPU; sources that never delivered are
    absent (the `stale_data` check reports those)."""
    end = datetime.combine(as_of + timedelta(days=1), time(), tzinfo=UTC)
    runs: dict[str, datetime] = {}
    for source, at in session.execute(
        select(SourceStatus.source, func.max(SourceStatus.last_success_at)).group_by(
            SourceStatus.source
        )
    ).all():
        if at is not None:
            runs[source] = _aware(at)  # type: ignore[assignment]
    result: list[Freshness] = []
    for kind, table, column in (
        ("billed", CostFact, CostFact.day),
        ("usage", UsageFact, UsageFact.hour),
        ("gpu", GpuFact, GpuFact.hour),
    ):
        within = column <= as_of if table is CostFact else column < end
        for source in _sources(session, table):
            newest_of = select(func.max(column)).where(table.source == source, within)
            if known_at is not None:
                newest_of = newest_of.where(table.collected_at < known_at)
            newest = session.scalar(newest_of)
            if newest is None:
                continue
            collected = session.scalar(
                select(func.max(table.collected_at)).where(table.source == source, column == newest)
            )
            through = _as_date(newest)
            # an hourly source has delivered a day once it has its last hour
            if table is not CostFact and isinstance(newest, datetime) and newest.hour < 23:
                through = through - timedelta(days=1)
            days_old = (as_of - through).days
            delay = EXPECTED_DELAY_DAYS.get(source, DEFAULT_DELAY_DAYS)
            last_run = runs.get(source) or _aware(collected)
            result.append(Freshness(source, through, last_run, days_old > delay, kind, days_old))
    return result


def _sources(session: Session, table) -> list[str]:
    """The distinct sources of a fact table, one index seek each (a loose index scan over
    the (source, time) index: a table of millions of facts has a handful of sources)."""
    sources: list[str] = []
    while True:
        statement = select(func.min(table.source))
        if sources:
            statement = statement.where(table.source > sources[-1])
        source = session.scalar(statement)
        if source is None:
            return sources
        sources.append(source)


def spend_is_stale(sources: Sequence[Freshness]) -> Freshness | None:
    """The freshest source of spend when even it is stale (the surfaces' banner), else None.

    Spend is known while any billed or usage source is within its delay: billing lags, and
    the token estimate covers the days after the bill."""
    spend = [f for f in sources if f.kind in ("billed", "usage")]
    if not spend or any(not f.stale for f in spend):
        return None
    return min(spend, key=lambda f: f.days_old if f.days_old is not None else 10**6)


def data_warning(sources: Sequence[Freshness]) -> str | None:
    """What every surface says at its top when spend data is missing (None: it is fresh)."""
    if not any(f.kind in ("billed", "usage") for f in sources):
        return "No spend data has arrived yet: nothing here is $0, it is unknown"
    stale = spend_is_stale(sources)
    return None if stale is None else stale_banner(stale)


def stale_banner(source: Freshness) -> str:
    """ "Billing data through 26 Nov (12 days old)" """
    what = "Billing data" if source.kind == "billed" else "Usage data"
    through = source.data_through
    day = f"{through.day} {through:%b}" if through else "?"
    return f"{what} through {day} ({source.days_old} days old)"


# The one vocabulary of gaps, on every surface and in every JSON: the registry's gaps
# (`governance.registry_view.gaps_from`, the one rule) by these names, and spend no
# workload claims as `unattributed_spend`. The checks raise a finding of each kind but
# `discovered_workload`, which their `unowned_workload` finding carries
# (`details.discovered_from`).
GAP_KINDS = {
    Gap.DISCOVERED: "discovered_workload",
    Gap.UNOWNED: "unowned_workload",
    Gap.OWNER_INACTIVE: "owner_inactive",
    Gap.MISSING_BUDGET: "missing_budget",
    Gap.MISSING_EXIT_STRATEGY: "missing_exit_strategy",
}
UNATTRIBUTED_SPEND = "unattributed_spend"


def gap_kinds(gaps) -> list[str]:
    """Gaps (`Gap` values or members) in the one vocabulary."""
    return [GAP_KINDS[Gap(gap)] for gap in gaps]


__all__ = [
    "ALERTED_STATUSES",
    "AT_RISK",
    "BUDGET_STATUSES",
    "EXCEEDED",
    "EXPECTED_DELAY_DAYS",
    "GAP_KINDS",
    "NO_BUDGET",
    "OK",
    "PROJECTED_OVERRUN",
    "UNATTRIBUTED_SPEND",
    "Freshness",
    "budget_status",
    "data_warning",
    "freshness",
    "gap_kinds",
    "spend_is_stale",
    "stale_banner",
]

"""The checks: the registry and the core's results turned into findings (DESIGN.md §4).

`evaluate(session, as_of, thresholds)` loads every workload's daily, hourly and GPU arrays
once (one query each, `models.arrays`), runs the numpy core over all of them in one pass,
and returns the findings, most severe and most money first.

`as_of` is a datetime (facts before it count: hours before it, days up to its date) or a
date (the whole of that day counts). Money at stake is always in the organisation's
currency; daily spend is billed cost where billing has arrived and the token estimate after
(`DailyArrays.cost`), plus, for self-hosted fleets whose bill is not in the facts, what the
provisioned GPUs cost (`gpu_cost`).

Severity rules (thresholds named as in `governance.thresholds`, per workload where it says):

| kind | info | warning | critical |
|---|---|---|---|
| budget_exceeded | | | budget status `exceeded`: month-to-date ≥ budget |
| budget_projected_overrun | | budget status `projected_overrun`: month-end projection > budget × (1 + projection_tolerance) | budget runs out ≥ projection_critical_days_early days before month end |
| spend_anomaly | | latest day past anomaly_z, anomaly_min_amount and anomaly_min_ratio | excess ≥ anomaly_critical_ratio × expected |
| retry_storm | | | always (money burns by the hour) |
| token_growth, fan_out_growth, unit_cost_drift, idle_gpu | | past its threshold | money at stake ≥ critical_amount a month |
| estimate_drift | | past estimate_drift_pct and estimate_drift_min_amount | |
| unattributed_spend | | share ≥ unattributed_warning_share | share ≥ unattributed_critical_share |
| unowned_workload, owner_inactive | | any | spend in the stake window ≥ ownership_critical_amount, or on the critical path |
| missing_budget | any | spend ≥ missing_budget_warning_amount | |
| missing_exit_strategy | any | on the critical path | |
| stale_data | | silent for stale_after_hours | silent for 3 × that, or never delivered |

Budget findings follow the one budget-status rule (`governance.ledger.budget_status`): a
budget finding exactly when the status is `exceeded` or `projected_overrun`; `at_risk`
(past budget_warning_ratio, or the projection's high end over budget) is shown by
`/llm-cost` and the digest, not raised as an alert.

Fingerprints: the kind and workload, plus the month for the budget kinds (a new month is a
new condition), the owner for `owner_inactive`, the source and scope for `stale_data`.
Discovered workloads are reported as unowned only (not also as missing a budget or an exit
strategy); experiments are not asked for an exit strategy; retired workloads are skipped.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_CEILING, Decimal
from functools import cached_property
from typing import Any

import numpy as np
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, selectinload

from llmgov import economics
from llmgov.governance.findings import Finding, Kind, fingerprint, format_money, sort_key
from llmgov.governance.ledger import (
    EXCEEDED,
    PROJECTED_OVERRUN,
    budget_status,
    freshness,
    spend_is_stale,
)
from llmgov.governance.thresholds import Thresholds, for_workload, load_thresholds
from llmgov.models.arrays import FactArrays, build_arrays
from llmgov.models.base import utcnow
from llmgov.models.facts import CheckWatermark, CostFact, SourceStatus, UsageFact
from llmgov.models.ledger import billed_usage
from llmgov.models.registry import OrganisationProfile, Platform, Workload, WorkloadStatus
from llmgov.models.series_keys import describe_series_key

HISTORY_DAYS = 91  # 13 weeks: 8 weekday baselines for anomalies, 56 days of forecast fit
# hours of usage and GPU facts: 7 days of same-hour baseline for retry storms plus the
# latest day, and a whole Monday-to-Sunday week for the digest's idle GPU cost
HOURLY_DAYS = 10
# how far back a late day is still examined for spend anomalies (a first import's last two
# weeks; older days are history, the baseline)
ANOMALY_LOOKBACK_DAYS = 14
ANOMALY_WATERMARK = "spend_anomaly"
SELF_HOSTED = frozenset({Platform.SELF_HOSTED.value, Platform.SAGEMAKER.value})
CENT = Decimal("0.01")


def cutoff_of(as_of: date | datetime) -> datetime:
    """The instant facts must precede: a datetime as given (UTC), a date's following midnight."""
    if isinstance(as_of, datetime):
        return as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    return datetime.combine(as_of + timedelta(days=1), time(), tzinfo=UTC)


def last_day_of(cutoff: datetime) -> date:
    """The last whole day before `cutoff`: daily analysis never judges a partial day (half
    a day always looks cheap); the hourly checks see the hours up to the cutoff."""
    return cutoff.astimezone(UTC).date() - timedelta(days=1)


def money(value: float | Decimal) -> Decimal:
    """A float from the core as an exact amount, rounded to cents (never negative zero)."""
    amount = Decimal(str(round(float(value), 2))).quantize(CENT)
    return amount if amount != 0 else Decimal("0.00")


@dataclass
class CheckContext:
    """Everything a check needs, loaded once per run."""

    session: Session
    cutoff: datetime
    thresholds: Thresholds
    currency: str
    workloads: list[Workload]  # not retired, in row order of the arrays
    facts: FactArrays  # every array the core needs, from models.arrays
    _limits: dict[int, Thresholds] = field(default_factory=dict)
    _decompositions: dict[tuple, Any] = field(default_factory=dict)
    _per_workload: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def last_day(self) -> date:
        return last_day_of(self.cutoff)

    @cached_property
    def daily(self) -> economics.DailyArrays:
        """`[workloads x HISTORY_DAYS]`, through the last whole day."""
        return self.facts.daily.through(self.last_day)

    @property
    def month_key(self) -> str:
        return self.last_day.strftime("%Y-%m")

    @cached_property
    def spend_stale(self) -> bool:
        """The spend data stops days before the last day (the rule `/llm-cost` and the digest
        use): no budget status but `exceeded` rests on the missing days."""
        return spend_is_stale(freshness(self.session, self.last_day)) is not None

    def limits(self, workload: Workload) -> Thresholds:
        """The thresholds for one workload (global ones with its overrides)."""
        if workload.id not in self._limits:
            self._limits[workload.id] = for_workload(
                self.thresholds, workload.slug, workload.thresholds
            )
        return self._limits[workload.id]

    def per_workload(self, name: str) -> np.ndarray:
        """`(W,)` float array of one threshold, for the core's vectorised detectors."""
        if name not in self._per_workload:
            self._per_workload[name] = np.array(
                [float(getattr(self.limits(w), name)) for w in self.workloads]
            )
        return self._per_workload[name]

    @cached_property
    def budgets(self) -> np.ndarray:
        """`(W,)` monthly budgets as floats, NaN where none."""
        return np.array(
            [
                float(w.budget_monthly) if w.budget_monthly is not None else np.nan
                for w in self.workloads
            ]
        )

    @cached_property
    def spend(self) -> np.ndarray:
        """`(W, D)` spend per day (see the module docstring for what counts)."""
        cost = self.daily.cost
        unbilled_fleet = np.array(
            [w.platform in SELF_HOSTED for w in self.workloads], dtype=bool
        ) & ~self.daily.has_billed.any(axis=1)
        return np.where(unbilled_fleet[:, None], cost + self.daily.gpu_cost, cost)

    def window_spend(self, days: int) -> np.ndarray:
        """`(W,)` spend over the last `days` days through last_day."""
        return self.spend[:, -days:].sum(axis=1) if days > 0 else np.zeros(len(self.workloads))

    @cached_property
    def stake(self) -> np.ndarray:
        """`(W,)` spend in the stake window: the money behind a registry finding."""
        return self.window_spend(self.thresholds.stake_window_days)

    @cached_property
    def forecast(self) -> economics.Forecast:
        return economics.forecast(self.spend, self.daily.days, self.last_day, self.budgets)

    def decomposition(self, before: tuple[date, date], after: tuple[date, date]):
        """Why spend changed between two day ranges (inclusive), for every workload."""
        key = (before, after)
        if key not in self._decompositions:
            daily = self.daily
            self._decompositions[key] = economics.decompose_periods(
                self.spend,
                daily.requests,
                daily.errors,
                daily.tokens,
                self._columns(*before),
                self._columns(*after),
            )
        return self._decompositions[key]

    def _columns(self, first: date, last: date) -> slice:
        start = (np.datetime64(first, "D") - self.daily.days[0]).astype(int)
        stop = (np.datetime64(last, "D") - self.daily.days[0]).astype(int) + 1
        return slice(max(int(start), 0), max(int(stop), 0))

    def period_spend(self, first: date, last: date) -> np.ndarray:
        """`(W,)` spend over the days first..last (inclusive) that the arrays hold."""
        return self.spend[:, self._columns(first, last)].sum(axis=1)

    def driver(self, row: int, before=None, after=None) -> dict[str, Any] | None:
        """The largest effect behind a change in spend (default: the last 7 days against the
        7 before), or None when spend did not change."""
        if before is None or after is None:
            after = (self.last_day - timedelta(days=6), self.last_day)
            before = (self.last_day - timedelta(days=13), self.last_day - timedelta(days=7))
        result = self.decomposition(before, after)
        change = float(result.change[row])
        if abs(change) < 0.005:
            return None
        effect = economics.EFFECTS[int(result.driver[row])]
        return {
            "effect": effect,
            "amount": round(float(getattr(result, effect)[row]), 2),
            "change": round(change, 2),
        }

    @cached_property
    def hourly(self) -> economics.HourlyArrays:
        """The recent hours before the cutoff (usage metrics: retry storms, hourly spikes)."""
        return _hours_before(self.facts.hourly, self.cutoff)

    @cached_property
    def gpu(self) -> economics.GpuArrays:
        """The recent hours of GPU fleets before the cutoff."""
        return _hours_before(self.facts.gpu, self.cutoff)

    def finding(
        self,
        kind: Kind,
        severity: str,
        workload: Workload | None,
        amount: Decimal | float,
        message: str,
        details: dict[str, Any],
        *period: object,
    ) -> Finding:
        owner = workload.owner if workload is not None else None
        team = workload.team if workload is not None else None
        slug = workload.slug if workload is not None else None
        return Finding(
            kind=kind.value,
            severity=severity,
            workload=slug,
            owner=owner.slack_id if owner is not None else None,
            team=team.slug if team is not None else None,
            amount=amount if isinstance(amount, Decimal) else money(amount),
            currency=self.currency,
            message=message,
            details=details,
            fingerprint=fingerprint(kind.value, slug, *period),
        )


Check = Callable[[CheckContext], Iterable[Finding]]


def evaluate(
    session: Session, as_of: date | datetime, thresholds: Thresholds | None = None
) -> list[Finding]:
    """Every finding as of `as_of`, most severe first, then most money at stake."""
    context = build_context(session, as_of, thresholds)
    findings: list[Finding] = []
    for check in CHECKS:
        findings.extend(check(context))
    return sorted(findings, key=sort_key)


def build_context(
    session: Session,
    as_of: date | datetime,
    thresholds: Thresholds | None = None,
    owners: Sequence[int] | None = None,
) -> CheckContext:
    """Load the workloads (not retired; only those of the `owners` person ids, if given)
    and their daily arrays as of `as_of`."""
    cutoff = cutoff_of(as_of)
    thresholds = thresholds if thresholds is not None else load_thresholds(session)
    profile = session.get(OrganisationProfile, 1)
    query = select(Workload).where(Workload.status != WorkloadStatus.RETIRED.value)
    if owners is not None:
        query = query.where(Workload.owner_id.in_(list(owners)))
    workloads = list(
        session.scalars(
            query.options(
                selectinload(Workload.owner),
                selectinload(Workload.backup_owner),
                selectinload(Workload.team),
            ).order_by(Workload.id)
        )
    )
    # The arrays run through the day of the cutoff (its hours matter for retry storms);
    # the daily analysis stops at the last whole day.
    facts = build_arrays(
        session,
        (cutoff - timedelta(microseconds=1)).astimezone(UTC).date(),
        workload_ids=[w.id for w in workloads],
        history_days=HISTORY_DAYS + 1,
        hourly_days=HOURLY_DAYS,
    )
    if facts.workload_ids.tolist() != [w.id for w in workloads]:
        raise RuntimeError("models.arrays returned rows in another order than the workloads")
    return CheckContext(
        session=session,
        cutoff=cutoff,
        thresholds=thresholds,
        currency=profile.currency if profile else "USD",
        workloads=workloads,
        facts=facts,
    )


def _hours_before(arrays, cutoff: datetime):
    """The columns of an hourly container for the hours that ended by `cutoff`."""
    last = np.datetime64((cutoff - timedelta(hours=1)).astimezone(UTC).replace(tzinfo=None), "h")
    end = int(np.searchsorted(arrays.hours, last, side="right"))
    return arrays if end == arrays.hours.size else arrays.select(slice(None), slice(0, end))


# ---- budgets ---------------------------------------------------------------------------


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _days_left(day: date) -> int:
    return (_month_end(day) - day).days


def _iso(value: np.datetime64) -> str | None:
    return None if np.isnat(value) else str(value.astype("datetime64[D]"))


def check_budgets(ctx: CheckContext) -> Iterator[Finding]:
    """One budget finding per workload and month, by the one budget-status rule:
    budget_exceeded (critical) once spent; else budget_projected_overrun when the projection
    ends the month over budget (with the tolerance)."""
    if not ctx.workloads:
        return  # the core needs at least one row
    fc = ctx.forecast
    month_name = ctx.last_day.strftime("%B")
    days_left = _days_left(ctx.last_day)
    # Screen in numpy (a cent of slack for rounding), decide exactly in Decimal below.
    budgets = np.nan_to_num(ctx.budgets, nan=0.0)
    spent = fc.month_to_date + 0.01 >= budgets
    over = fc.month_end + 0.01 > budgets * (1 + ctx.per_workload("projection_tolerance"))
    for row in np.flatnonzero((budgets > 0) & (spent | over)).tolist():
        workload = ctx.workloads[row]
        limits = ctx.limits(workload)
        budget = Decimal(workload.budget_monthly)
        spent = money(fc.month_to_date[row])
        details = {
            "month": ctx.month_key,
            "budget": budget,
            "month_to_date": spent,
            "share": round(float(spent / budget), 4),
            "days_left": days_left,
            "projected_month_end": money(fc.month_end[row]),
            "projected_low": money(fc.month_end_low[row]),
            "projected_high": money(fc.month_end_high[row]),
            "exhausted_on": _iso(fc.exhaustion_date[row]),
            "exhausted_on_earliest": _iso(fc.exhaustion_date_earliest[row]),
            "driver": ctx.driver(row),
        }
        slug = workload.slug
        share = spent / budget
        projected = money(fc.month_end[row])
        status = budget_status(
            budget, spent, projected, money(fc.month_end_high[row]), limits, stale=ctx.spend_stale
        )
        if status == EXCEEDED:
            yield ctx.finding(
                Kind.BUDGET_EXCEEDED,
                "critical",
                workload,
                spent - budget,
                f"{slug} has spent {format_money(spent, ctx.currency)} of its "
                f"{format_money(budget, ctx.currency)} {month_name} budget ({share:.0%}) with "
                f"{days_left} days to go: cut usage or raise the budget.",
                {**details, "over_by": spent - budget},
                ctx.month_key,
            )
        elif status == PROJECTED_OVERRUN:
            exhausted = details["exhausted_on"]
            early = (
                (_month_end(ctx.last_day) - date.fromisoformat(exhausted)).days if exhausted else 0
            )
            severity = (
                "critical"
                if exhausted and early >= limits.projection_critical_days_early
                else "warning"
            )
            when = f"on {exhausted}" if exhausted else "before the month ends"
            yield ctx.finding(
                Kind.BUDGET_PROJECTED_OVERRUN,
                severity,
                workload,
                projected - budget,
                f"{slug} is projected to spend {format_money(projected, ctx.currency)} in "
                f"{month_name} against a {format_money(budget, ctx.currency)} budget and runs "
                f"out {when}: find what drives it before then.",
                {**details, "days_early": early},
                ctx.month_key,
            )


# ---- the core's detectors --------------------------------------------------------------


def _usage_severity(ctx: CheckContext, workload: Workload, stake: Decimal) -> str:
    return "critical" if stake >= ctx.limits(workload).critical_amount else "warning"


def _days_to_examine(ctx: CheckContext) -> list[date]:
    """The days of the last ANOMALY_LOOKBACK_DAYS that this check has not examined since
    they last changed: days of facts collected after the watermark (a late bill, a
    restatement, a first import, a missed run). Moves the watermark (a dry run's rollback
    moves it back)."""
    first = ctx.last_day - timedelta(days=ANOMALY_LOOKBACK_DAYS - 1)
    mark = ctx.session.get(CheckWatermark, ANOMALY_WATERMARK)
    since = mark.collected_through if mark is not None else None
    cost_days = select(CostFact.day, CostFact.collected_at).where(
        CostFact.day >= first, CostFact.day <= ctx.last_day, billed_usage()
    )
    usage = select(UsageFact.hour, UsageFact.collected_at).where(
        UsageFact.hour >= datetime.combine(first, time(), tzinfo=UTC), UsageFact.hour < ctx.cutoff
    )
    if since is not None:
        cost_days = cost_days.where(CostFact.collected_at > since)
        usage = usage.where(UsageFact.collected_at > since)
    days: set[date] = set()
    newest = since
    for moment, collected in [*ctx.session.execute(cost_days), *ctx.session.execute(usage)]:
        day = moment.date() if isinstance(moment, datetime) else moment
        days.add(day)
        collected = collected if collected.tzinfo else collected.replace(tzinfo=UTC)
        newest = collected if newest is None or collected > newest else newest
    if mark is None:
        mark = CheckWatermark(name=ANOMALY_WATERMARK)
        ctx.session.add(mark)
    mark.collected_through = newest
    mark.evaluated_through = ctx.last_day
    mark.updated_at = utcnow()
    return sorted(day for day in days if first <= day <= ctx.last_day)


def check_anomalies(ctx: CheckContext) -> Iterator[Finding]:
    """spend_anomaly: every day that arrived since the last run (within the last
    ANOMALY_LOOKBACK_DAYS) against what that weekday usually cost before it, and the latest
    hour against the same hour of the days before (one finding per workload: the largest
    excess). A day is examined once: a second run with no new data repeats nothing."""
    if not ctx.workloads:
        return  # the core needs at least one row
    day = ctx.last_day
    examine = _days_to_examine(ctx)
    z = ctx.per_workload("anomaly_z")
    min_amount = ctx.per_workload("anomaly_min_amount")
    min_ratio = ctx.per_workload("anomaly_min_ratio")
    scores = economics.daily_anomalies(
        ctx.spend,
        ctx.daily.days,
        day,
        eval_days=ANOMALY_LOOKBACK_DAYS,
        z=z,
        min_amount=min_amount,
        min_ratio=min_ratio,
    )
    hourly = ctx.hourly
    hour_scores = (
        economics.hourly_anomalies(
            hourly.cost,
            hourly.hours,
            factors=scores.weekday_factors,
            z=z,
            min_amount=min_amount,
            min_ratio=min_ratio,
        )
        if hourly.hours.size
        else None
    )
    found: dict[int, tuple[dict[str, float], str]] = {}
    # each examined day that is anomalous, per workload: the largest excess
    times = scores.times.astype("datetime64[D]").astype(date).tolist()
    columns = [i for i, t in enumerate(times) if t in set(examine)]
    for column in columns:
        for row in np.flatnonzero(scores.is_anomaly[:, column]).tolist():
            evidence = {
                "actual": float(scores.actual[row, column]),
                "expected": float(scores.expected[row, column]),
                "excess": float(scores.excess[row, column]),
                "score": float(scores.score[row, column]),
            }
            if row not in found or evidence["excess"] > found[row][0]["excess"]:
                found[row] = (evidence, f"on {times[column].isoformat()}")
    for detection, period in (
        (economics.spend_anomalies(hour_scores) if hour_scores is not None else None, None),
    ):
        if detection is None:
            continue
        for i, row in enumerate(detection.workloads.tolist()):
            evidence = {name: float(values[i]) for name, values in detection.evidence.items()}
            when = period or f"the hour from {str(hourly.hours[-1])[11:13]}:00 UTC"
            if row not in found or evidence["excess"] > found[row][0]["excess"]:
                found[row] = (evidence, when)
    for row, (evidence, when) in sorted(found.items()):
        workload = ctx.workloads[row]
        actual, expected = evidence["actual"], evidence["expected"]
        excess = money(evidence["excess"])
        critical = excess >= money(expected * ctx.limits(workload).anomaly_critical_ratio)
        times = f"{actual / expected:.1f}x" if expected > 0 else "far above"
        yield ctx.finding(
            Kind.SPEND_ANOMALY,
            "critical" if critical else "warning",
            workload,
            excess,
            f"{workload.slug} spent {format_money(money(actual), ctx.currency)} {when} "
            f"({times} the usual {format_money(money(expected), ctx.currency)}): check recent "
            "deploys and traffic.",
            {
                "day": when,
                "actual": money(actual),
                "expected": money(expected),
                "excess": excess,
                "score": round(min(evidence["score"], 1e6), 2),
                "driver": ctx.driver(row),
            },
        )


def check_retry_storms(ctx: CheckContext) -> Iterator[Finding]:
    """retry_storm: the latest hour's attempts surge with errors and throttles."""
    if not ctx.workloads:
        return  # the core needs at least one row
    detection = economics.retry_storm(
        ctx.hourly,
        ratio=ctx.per_workload("retry_storm_ratio"),
        error_share=ctx.per_workload("retry_storm_error_share"),
        min_excess_requests=ctx.per_workload("retry_storm_min_requests"),
        min_amount=ctx.per_workload("min_amount"),
    )
    for i, row in enumerate(detection.workloads.tolist()):
        workload = ctx.workloads[row]
        ev = {name: values[i] for name, values in detection.evidence.items()}
        since = str(detection.since[i]) if detection.since is not None else None
        stake = money(detection.money_at_stake[i])
        yield ctx.finding(
            Kind.RETRY_STORM,
            "critical",
            workload,
            stake,
            f"{workload.slug} is in a retry storm: {ev['requests_per_hour']:,.0f} calls in the "
            f"last hour ({ev['surge_ratio']:.1f}x usual), {ev['failure_share_pct']:.0f}% failing "
            "or throttled: check client retries and timeouts now.",
            {
                "since": since,
                "hours": int(ev["hours"]),
                "invocations": ev["requests_per_hour"],
                "baseline": ev["baseline_requests_per_hour"],
                "ratio": ev["surge_ratio"],
                "error_share": ev["failure_share_pct"] / 100,
                "excess_cost_per_hour": money(ev["excess_cost_per_hour"]),
            },
        )


def check_growth(ctx: CheckContext) -> Iterator[Finding]:
    """token_growth, fan_out_growth and unit_cost_drift over the daily arrays."""
    if not ctx.workloads:
        return  # the core needs at least one row
    daily = ctx.daily
    min_amount = ctx.per_workload("min_amount")
    detections = [
        economics.token_growth(
            daily, growth_pct=ctx.per_workload("token_growth_pct"), min_amount=min_amount
        ),
        economics.fan_out_growth(
            daily, growth_pct=ctx.per_workload("fan_out_growth_pct"), min_amount=min_amount
        ),
        economics.unit_cost_drift(
            daily,
            drift_pct=ctx.per_workload("unit_cost_drift_pct"),
            usage_flat_pct=(
                ctx.per_workload("usage_flat_pct")
                if any(ctx.limits(w).usage_flat_pct > 0 for w in ctx.workloads)
                else None
            ),
            min_amount=min_amount,
        ),
    ]
    for detection in detections:
        for i, row in enumerate(detection.workloads.tolist()):
            workload = ctx.workloads[row]
            ev = {name: values[i] for name, values in detection.evidence.items()}
            stake = money(detection.money_at_stake[i])
            per_month = format_money(stake, ctx.currency)
            slug = workload.slug
            if detection.kind == Kind.TOKEN_GROWTH:
                message = (
                    f"{slug}: tokens per request grew {ev['growth_pct']:.0f}% over "
                    f"{int(ev['weeks'])} weeks ({ev['tokens_per_request_before']:,.0f} to "
                    f"{ev['tokens_per_request_now']:,.0f}), about {per_month} a month: "
                    "review prompt and context growth."
                )
                details = {
                    "before": ev["tokens_per_request_before"],
                    "after": ev["tokens_per_request_now"],
                    "growth_pct": ev["growth_pct"],
                    "weeks": int(ev["weeks"]),
                }
            elif detection.kind == Kind.FAN_OUT_GROWTH:
                message = (
                    f"{slug}: LLM calls per upstream request rose {ev['growth_pct']:.0f}% "
                    f"({ev['calls_per_request_before']:.2f} to {ev['calls_per_request_now']:.2f}),"
                    f" about {per_month} a month: find what makes the extra calls."
                )
                details = {
                    "before": ev["calls_per_request_before"],
                    "after": ev["calls_per_request_now"],
                    "growth_pct": ev["growth_pct"],
                }
            else:
                message = (
                    f"{slug}: spend rose {ev['spend_growth_pct']:.0f}% while usage moved "
                    f"{ev['usage_growth_pct']:+.0f}%, about {per_month} a month: check for a "
                    "model change, longer outputs or lost caching."
                )
                details = {
                    "spend_change_pct": ev["spend_growth_pct"],
                    "usage_change_pct": ev["usage_growth_pct"],
                    "requests_change_pct": ev["requests_growth_pct"],
                    "cost_per_1k_tokens_before": ev["cost_per_1k_tokens_before"],
                    "cost_per_1k_tokens_now": ev["cost_per_1k_tokens_now"],
                }
            details["driver"] = ctx.driver(row)
            details["per_month"] = stake
            yield ctx.finding(
                Kind(detection.kind),
                _usage_severity(ctx, workload, stake),
                workload,
                stake,
                message,
                details,
            )


def check_idle_gpu(ctx: CheckContext) -> Iterator[Finding]:
    """idle_gpu: provisioned GPU hours under the utilisation threshold, last week."""
    if not ctx.workloads:
        return  # the core needs at least one row
    fleets = [w for w in ctx.workloads if w.platform in SELF_HOSTED or w.gpu]
    if not fleets:
        return
    detection = economics.idle_gpu(
        ctx.gpu,
        util_pct=ctx.per_workload("idle_gpu_util_pct"),
        min_hours=ctx.per_workload("idle_gpu_min_hours"),
        min_amount=ctx.per_workload("min_amount"),
    )
    for i, row in enumerate(detection.workloads.tolist()):
        workload = ctx.workloads[row]
        ev = {name: values[i] for name, values in detection.evidence.items()}
        stake = money(detection.money_at_stake[i])
        yield ctx.finding(
            Kind.IDLE_GPU,
            _usage_severity(ctx, workload, stake),
            workload,
            stake,
            f"{workload.slug}: GPUs sat idle {int(ev['idle_hours'])} of "
            f"{int(ev['provisioned_hours'])} hours last week "
            f"({ev['mean_utilisation_pct']:.0f}% mean utilisation), about "
            f"{format_money(stake, ctx.currency)} a month: scale down off-peak or compare "
            "with Bedrock.",
            {
                "idle_hours": int(ev["idle_hours"]),
                "provisioned_hours": int(ev["provisioned_hours"]),
                "mean_utilisation_pct": ev["mean_utilisation_pct"],
                "idle_cost": money(ev["idle_cost"]),
                "monthly_idle_cost": stake,
                "instance_type": (workload.gpu or {}).get("instance_type"),
            },
        )


def check_estimate_drift(ctx: CheckContext) -> Iterator[Finding]:
    """estimate_drift: the token-based estimate against the bill, where both exist."""
    if not ctx.workloads:
        return  # the core needs at least one row
    detection = economics.estimate_drift(
        ctx.daily,
        drift_pct=ctx.per_workload("estimate_drift_pct"),
        min_amount=ctx.per_workload("estimate_drift_min_amount"),
    )
    for i, row in enumerate(detection.workloads.tolist()):
        workload = ctx.workloads[row]
        ev = {name: values[i] for name, values in detection.evidence.items()}
        stake = money(detection.money_at_stake[i])
        direction = "over" if ev["drift_pct"] > 0 else "under"
        yield ctx.finding(
            Kind.ESTIMATE_DRIFT,
            "warning",
            workload,
            stake,
            f"{workload.slug}: token-based estimates run {abs(ev['drift_pct']):.0f}% {direction} "
            f"the bill ({format_money(money(ev['estimated']), ctx.currency)} estimated vs "
            f"{format_money(money(ev['billed']), ctx.currency)} billed over {int(ev['days'])} "
            "days): check its prices and attribution.",
            {
                "estimated": money(ev["estimated"]),
                "billed": money(ev["billed"]),
                "drift_pct": ev["drift_pct"],
                "window_days": int(ev["days"]),
            },
        )


# ---- the registry ----------------------------------------------------------------------


def _suggested_budget(spend: Decimal) -> Decimal:
    """The window's spend plus 20%, rounded up to a round number."""
    target = spend * Decimal("1.2")
    step = Decimal(10) ** max(len(str(int(target))) - 2, 1)
    return (target / step).to_integral_value(rounding=ROUND_CEILING) * step


def check_registry(ctx: CheckContext) -> Iterator[Finding]:
    """unowned_workload, owner_inactive, missing_budget, missing_exit_strategy."""
    window = ctx.thresholds.stake_window_days
    for row, workload in enumerate(ctx.workloads):
        limits = ctx.limits(workload)
        stake = money(ctx.stake[row])
        spent = format_money(stake, ctx.currency)
        slug = workload.slug
        base = {
            "spend_window": stake,
            "window_days": window,
            "status": workload.status,
            "platform": workload.platform,
            "critical_path": bool(workload.critical_path),
        }
        big = stake >= limits.ownership_critical_amount or bool(workload.critical_path)
        owner = workload.owner
        discovered = workload.status == WorkloadStatus.DISCOVERED.value
        if owner is None or discovered:
            what = "was discovered in the spend data and has" if discovered else "has"
            yield ctx.finding(
                Kind.UNOWNED_WORKLOAD,
                "critical" if big else "warning",
                workload,
                stake,
                f"{slug} {what} no owner; {spent} spent in the last {window} days: "
                "claim it or assign an owner.",
                {**base, "discovered_from": workload.discovered_from},
            )
        elif not owner.active:
            backup = workload.backup_owner
            takeover = (
                f"the backup owner ({backup.label}) should take it over"
                if backup is not None and backup.active
                else "assign a new owner"
            )
            yield ctx.finding(
                Kind.OWNER_INACTIVE,
                "critical" if big else "warning",
                workload,
                stake,
                f"{owner.label}, the owner of {slug}, has left; {spent} spent in the last "
                f"{window} days: {takeover}.",
                {
                    **base,
                    "owner_name": owner.label,
                    "backup_owner": backup.slack_id if backup is not None else None,
                },
                owner.slack_id or owner.email or owner.id,
            )
        if discovered:
            continue
        if workload.budget_monthly is None:
            suggested = _suggested_budget(stake) if stake > 0 else None
            advice = (
                f"set one, e.g. {format_money(suggested, ctx.currency)} a month"
                if suggested
                else "set one before it starts spending"
            )
            yield ctx.finding(
                Kind.MISSING_BUDGET,
                "warning" if stake >= limits.missing_budget_warning_amount else "info",
                workload,
                stake,
                f"{slug} has no monthly budget ({spent} in the last {window} days): {advice}.",
                {**base, "suggested_budget": suggested},
            )
        if (
            not (workload.exit_strategy or "").strip()
            and workload.status != WorkloadStatus.EXPERIMENT.value
        ):
            yield ctx.finding(
                Kind.MISSING_EXIT_STRATEGY,
                "warning" if workload.critical_path else "info",
                workload,
                stake,
                f"{slug} has no exit strategy: record how it would move to another model "
                "or platform.",
                base,
            )


# ---- unattributed spend ----------------------------------------------------------------

TOP_SOURCES = 5


def check_unattributed(ctx: CheckContext) -> Iterator[Finding]:
    """LLM spend that no attribution rule claims, over the stake window (billed cost)."""
    limits = ctx.thresholds
    window = limits.stake_window_days
    start = ctx.last_day - timedelta(days=window - 1)
    in_window = and_(CostFact.day >= start, CostFact.day <= ctx.last_day, billed_usage())
    rows = ctx.session.execute(
        select(CostFact.source, CostFact.series_key, func.sum(CostFact.cost))
        .where(in_window, CostFact.workload_id.is_(None))
        .group_by(CostFact.source, CostFact.series_key)
        .order_by(func.sum(CostFact.cost).desc())
    ).all()
    unattributed = sum((Decimal(r[2] or 0) for r in rows), Decimal(0))
    if unattributed < limits.unattributed_min_amount:
        return
    attributed = ctx.session.scalar(
        select(func.sum(CostFact.cost)).where(in_window, CostFact.workload_id.is_not(None))
    ) or Decimal(0)
    total = unattributed + Decimal(attributed)
    share = float(unattributed / total) if total > 0 else 1.0
    if share < limits.unattributed_warning_share:
        return
    severity = "critical" if share >= limits.unattributed_critical_share else "warning"
    top = [
        {
            "source": source,
            "series_key": key,
            "label": describe_series_key(key),
            "amount": money(amount),
        }
        for source, key, amount in rows[:TOP_SOURCES]
    ]
    amount = money(unattributed)
    yield ctx.finding(
        Kind.UNATTRIBUTED_SPEND,
        severity,
        None,
        amount,
        f"{format_money(amount, ctx.currency)} of LLM spend in the last {window} days "
        f"({share:.0%} of it) matches no workload: add attribution rules for its largest "
        "sources.",
        {
            "window_days": window,
            "share": round(share, 4),
            "total": money(total),
            "sources": len(rows),
            "top_sources": top,
        },
        ctx.currency,
    )


# ---- data freshness --------------------------------------------------------------------


def check_stale(ctx: CheckContext) -> Iterator[Finding]:
    """Sources that have not delivered for too long (as of the cutoff)."""
    for status in ctx.session.scalars(select(SourceStatus).order_by(SourceStatus.id)):
        limit = ctx.thresholds.stale_after(status.source)
        last = status.last_success_at
        if last is None:
            if status.last_error_at is None or status.last_error_at > ctx.cutoff:
                continue  # nothing was known about this source yet
            hours = None
        else:
            if last > ctx.cutoff:
                continue  # it delivered after the moment asked about: fine back then
            hours = (ctx.cutoff - last).total_seconds() / 3600
            if hours < limit:
                continue
        severity = "critical" if hours is None or hours >= 3 * limit else "warning"
        scope = "" if status.scope in ("*", "") else f" ({status.scope})"
        since = (
            "has never delivered" if hours is None else f"has not delivered for {hours:.0f} hours"
        )
        error = f"; last error: {status.last_error}" if status.last_error else ""
        yield Finding(
            kind=Kind.STALE_DATA.value,
            severity=severity,
            workload=None,
            owner=None,
            team=None,
            amount=Decimal("0.00"),
            currency=ctx.currency,
            message=(
                f"{status.source}{scope} {since}: checks and forecasts miss its data; "
                f"check the collector{error}"
            )[:500],
            details={
                "source": status.source,
                "scope": status.scope,
                "last_success_at": last,
                "hours_silent": round(hours, 1) if hours is not None else None,
                "stale_after_hours": limit,
                "last_error": status.last_error,
                "last_error_at": status.last_error_at,
            },
            fingerprint=fingerprint(Kind.STALE_DATA.value, status.source, status.scope),
        )


CHECKS: list[Check] = [
    check_budgets,
    check_anomalies,
    check_retry_storms,
    check_growth,
    check_idle_gpu,
    check_estimate_drift,
    check_registry,
    check_unattributed,
    check_stale,
]


__all__ = [
    "CHECKS",
    "CheckContext",
    "build_context",
    "cutoff_of",
    "evaluate",
    "last_day_of",
]

"""Check thresholds: defaults, then organisation overrides, then the environment, then per workload.

Where each value can be set (later wins):
1. the defaults below (cost-guardian's "Δ ≥ $10 or ≥ 50%" and LiteLLM's 85% budget warning
   are the models, see the reference notes);
2. the registry file, `organisation: {thresholds: {name: value}}` (kept in
   `OrganisationProfile.extra["thresholds"]`);
3. the environment, `LLMGOV_THRESHOLD_<NAME>=value` (e.g. `LLMGOV_THRESHOLD_ANOMALY_Z=4`);
4. per workload, the registry's `thresholds: {name: value}` (`Workload.thresholds`).

An unknown name or a value of the wrong type is refused with a message naming where it came
from, the name and what is expected.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.orm import Session

from llmgov.models.errors import BadInput
from llmgov.models.registry import OrganisationProfile

ENV_PREFIX = "LLMGOV_THRESHOLD_"
SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True)
class Thresholds:
    # -- what is posted ---------------------------------------------------------------------
    # findings below this severity become alerts (digests and the gap review list them)
    # but are not posted to Slack until they rise to it
    post_min_severity: str = "warning"
    # findings with less money at stake than this are not posted (registry gaps with no
    # money at stake never are: the gap review and the digest list them)
    post_min_amount: Decimal = Decimal("0")
    # more new alerts than this for one channel in one run become one grouped summary post
    post_max_per_channel: int = 10

    # -- money at stake and noise --------------------------------------------------------
    # trailing window for "money at stake" of registry findings (unowned, missing budget...)
    stake_window_days: int = 30
    # below this amount at stake, money-based findings are not raised at all
    min_amount: Decimal = Decimal("2")

    # -- budgets -------------------------------------------------------------------------
    # budget_exceeded is raised at this share of the monthly budget spent (warning), and at
    # 100% (critical)
    budget_warning_ratio: float = 0.85
    # budget_projected_overrun: projected month end above budget x (1 + tolerance)
    projection_tolerance: float = 0.0
    # ... critical when the budget runs out at least this many days before the month ends
    projection_critical_days_early: int = 7

    # -- anomalies -----------------------------------------------------------------------
    anomaly_z: float = 3.5  # robust z-score (median/MAD, weekday-aware) to call a day anomalous
    anomaly_min_amount: Decimal = Decimal("10")  # excess over the expected day, money
    anomaly_min_ratio: float = 0.5  # excess over the expected day, relative
    anomaly_critical_ratio: float = 2.0  # excess ≥ 2x expected (spend at 3x normal): critical

    # -- usage detectors (economics.detectors) -------------------------------------------
    retry_storm_ratio: float = 3.0  # hourly attempts vs the same hour of previous days
    retry_storm_error_share: float = 0.2  # share of attempts that errored or were throttled
    retry_storm_min_requests: float = 50.0  # excess attempts in the hour
    token_growth_pct: float = 15.0  # tokens per request, growth over four weeks
    fan_out_growth_pct: float = 25.0  # LLM calls per upstream request, last week vs before
    unit_cost_drift_pct: float = 20.0  # spend per day and cost per token both up this much
    usage_flat_pct: float = 0.0  # if > 0, unit_cost_drift also needs usage to move less
    idle_gpu_util_pct: float = 20.0  # a provisioned hour under this GPU utilisation is idle
    idle_gpu_min_hours: float = 24.0  # idle hours in the last week before it is a finding
    estimate_drift_pct: float = 20.0  # token-based estimate vs billed cost, either way
    estimate_drift_min_amount: Decimal = Decimal("20")  # per month
    # money at stake per month that makes a usage finding (growth, drift, idle) critical
    critical_amount: Decimal = Decimal("1000")

    # -- ownership gaps ------------------------------------------------------------------
    unattributed_min_amount: Decimal = Decimal("10")  # over the stake window
    unattributed_warning_share: float = 0.05  # of all LLM spend in the window
    unattributed_critical_share: float = 0.20
    # unowned workloads / inactive owners / missing budgets with at least this much at stake
    # in the window are critical (unowned, inactive) or warning (missing budget)
    ownership_critical_amount: Decimal = Decimal("1000")
    missing_budget_warning_amount: Decimal = Decimal("500")

    # -- data freshness ------------------------------------------------------------------
    stale_after_hours: float = 26.0  # hourly and daily sources
    # per-source overrides, e.g. {"cost_explorer": 72} (billing lags 8-48 h)
    stale_after_hours_by_source: dict[str, float] = field(
        default_factory=lambda: {"cost_explorer": 72.0, "focus": 96.0, "cur2": 96.0}
    )

    def with_overrides(self, overrides: Mapping[str, Any], where: str) -> Thresholds:
        """A copy with `overrides` applied; BadInput names `where`, the key and the problem."""
        if not overrides:
            return self
        return dataclasses.replace(self, **parse_overrides(overrides, where))

    def stale_after(self, source: str) -> float:
        return float(self.stale_after_hours_by_source.get(source, self.stale_after_hours))


FIELDS = {f.name: f for f in dataclasses.fields(Thresholds)}


def parse_overrides(overrides: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate and coerce threshold overrides (from a file, the environment or a workload)."""
    if not isinstance(overrides, Mapping):
        raise BadInput(f"{where}: thresholds must be a mapping of name: value")
    parsed: dict[str, Any] = {}
    for name, raw in overrides.items():
        spec = FIELDS.get(str(name))
        if spec is None:
            known = ", ".join(sorted(FIELDS))
            raise BadInput(f"{where}: unknown threshold {name!r}; known thresholds: {known}")
        parsed[spec.name] = _coerce(spec, raw, where)
    return parsed


def _coerce(spec: dataclasses.Field, raw: Any, where: str) -> Any:
    kind = spec.type if isinstance(spec.type, str) else getattr(spec.type, "__name__", "")
    try:
        if kind.startswith("dict"):
            if isinstance(raw, str):
                raw = dict(part.split("=", 1) for part in raw.split(",") if part.strip())
            if not isinstance(raw, Mapping):
                raise TypeError
            values = {str(k).strip(): float(v) for k, v in raw.items()}
            if any(v < 0 for v in values.values()):
                raise ValueError
            return values
        if kind == "str":
            value = str(raw).strip().lower()
            if value not in SEVERITIES:
                raise ValueError
            return value
        if isinstance(raw, bool):
            raise TypeError
        if kind == "Decimal":
            value: Any = Decimal(str(raw))
            if not value.is_finite():
                raise ValueError
        elif kind == "int":
            value = int(str(raw))
        else:
            value = float(raw)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError
        if value < 0:
            raise ValueError
        return value
    except (TypeError, ValueError, InvalidOperation):
        expected = {
            "Decimal": "a non-negative amount like 25 or 12.50",
            "int": "a non-negative whole number",
            "float": "a non-negative number",
            "str": "one of " + ", ".join(SEVERITIES),
        }.get(kind, "a mapping like {cost_explorer: 72} or cost_explorer=72")
        raise BadInput(f"{where}: threshold {spec.name} = {raw!r} is not {expected}") from None


def load_thresholds(session: Session, environ: Mapping[str, str] | None = None) -> Thresholds:
    """The global thresholds: defaults, then the registry's organisation, then the environment."""
    thresholds = Thresholds()
    profile = session.get(OrganisationProfile, 1)
    if profile is not None and isinstance(profile.extra, dict):
        org = profile.extra.get("thresholds") or {}
        thresholds = thresholds.with_overrides(org, "registry organisation.thresholds")
    env = os.environ if environ is None else environ
    from_env = {
        key[len(ENV_PREFIX) :].lower(): value
        for key, value in env.items()
        if key.startswith(ENV_PREFIX) and value.strip()
    }
    return thresholds.with_overrides(from_env, "environment " + ENV_PREFIX + "*")


def for_workload(
    thresholds: Thresholds, slug: str, overrides: Mapping[str, Any] | None
) -> Thresholds:
    """The thresholds for one workload: the global ones with its own overrides on top."""
    return thresholds.with_overrides(overrides or {}, f"workload {slug} thresholds")


__all__ = ["Thresholds", "for_workload", "load_thresholds", "parse_overrides"]

"""A finding: one condition a check found, in the JSON contract of README's "Finding kinds".

`llmgov check --format json` prints a list of `Finding.to_json()`; alerts are keyed by the
finding's `fingerprint`, which is stable across runs for the same condition (the kind, the
subject and, where the condition belongs to a period, the period key), so a condition that
persists is one alert, updated in place, never a stream of repeats.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return SEVERITY_RANK[self.value]


SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


def severity_rank(severity: str | None) -> int:
    """0 info, 1 warning, 2 critical; -1 for None (never notified)."""
    return -1 if severity is None else SEVERITY_RANK[severity]


class Kind(enum.StrEnum):
    """Every finding kind (README, "Finding kinds"), in the order reviews list them."""

    BUDGET_EXCEEDED = "budget_exceeded"
    BUDGET_PROJECTED_OVERRUN = "budget_projected_overrun"
    SPEND_ANOMALY = "spend_anomaly"
    RETRY_STORM = "retry_storm"
    TOKEN_GROWTH = "token_growth"
    FAN_OUT_GROWTH = "fan_out_growth"
    UNIT_COST_DRIFT = "unit_cost_drift"
    IDLE_GPU = "idle_gpu"
    UNATTRIBUTED_SPEND = "unattributed_spend"
    UNOWNED_WORKLOAD = "unowned_workload"
    OWNER_INACTIVE = "owner_inactive"
    MISSING_BUDGET = "missing_budget"
    MISSING_EXIT_STRATEGY = "missing_exit_strategy"
    ESTIMATE_DRIFT = "estimate_drift"
    STALE_DATA = "stale_data"
    # the early warning (governance/early_warning.py), judged every few minutes
    MINUTE_RETRY_STORM = "minute_retry_storm"
    RUNAWAY = "runaway"


# Kinds only the early-warning run raises and resolves; the hourly and daily checks leave
# their alerts alone (and it leaves theirs).
MINUTE_KINDS = frozenset({Kind.MINUTE_RETRY_STORM.value, Kind.RUNAWAY.value})


def fingerprint(kind: str, *parts: object) -> str:
    """A stable id for one condition: sha256 of the kind and its subject/period parts."""
    text = "\x1f".join([kind, *("" if part is None else str(part) for part in parts)])
    return hashlib.sha256(text.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class Finding:
    kind: str
    severity: str
    workload: str | None  # slug
    owner: str | None  # Slack user id of the accountable owner
    team: str | None  # team slug
    amount: Decimal  # money at stake, in `currency`
    currency: str
    message: str  # one line a person can act on
    details: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if self.kind not in Kind.__members__.values():
            raise ValueError(f"unknown finding kind {self.kind!r}")
        if self.severity not in SEVERITY_RANK:
            raise ValueError(f"unknown severity {self.severity!r}")
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", fingerprint(self.kind, self.workload))

    @property
    def rank(self) -> int:
        return SEVERITY_RANK[self.severity]

    def to_json(self) -> dict[str, Any]:
        """The JSON object of `llmgov check --format json`: `amount` is a JSON number (rounded to cents)."""
        return {
            "kind": self.kind,
            "severity": self.severity,
            "workload": self.workload,
            "owner": self.owner,
            "team": self.team,
            "amount": float(round(self.amount, 2)),
            "currency": self.currency,
            "message": self.message,
            "details": jsonable(self.details),
            "fingerprint": self.fingerprint,
        }


def jsonable(value: Any) -> Any:
    """Decimals to numbers, dates to ISO strings, recursively (details are free-form)."""
    if isinstance(value, Decimal):
        return float(round(value, 4))
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value


def sort_key(finding: Finding) -> tuple[int, Decimal, str]:
    """Most severe first, then most money at stake, then by fingerprint for stability."""
    return (-finding.rank, -finding.amount, finding.fingerprint)


CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def format_money(amount: Decimal | float | int, currency: str = "USD") -> str:
    """$1,234.50 for USD; 1,234.50 CHF where no symbol is known. Whole amounts ≥ 1,000 lose cents."""
    value = Decimal(str(amount))
    digits = 0 if abs(value) >= 1000 else 2
    text = f"{abs(value):,.{digits}f}"
    sign = "-" if value < 0 else ""
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency}"


__all__ = [
    "MINUTE_KINDS",
    "Finding",
    "Kind",
    "Severity",
    "fingerprint",
    "format_money",
    "jsonable",
    "severity_rank",
    "sort_key",
]

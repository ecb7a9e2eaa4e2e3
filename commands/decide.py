"""`/llm-decide [SLUG | key=value ...]`: Bedrock, self-hosting or a hybrid, from measured data.

For a registered workload the inputs are measured over the 30 days before the answer's date
(volume and input/output mix from the usage metrics, traffic shape from the hourly series,
observed latency against the workload's objective), read from the registry (constraints,
critical path, exit strategy, owner) and from the organisation profile (ML infrastructure,
people cost). `key=value` arguments override any of them (a what-if); without a slug they
describe a hypothetical workload.

The framework (DESIGN.md §5) is the backbone. Self-host when at least one holds: predictable
high volume above break-even; fine-grained model control (fine-tuning, deterministic output,
a latency objective Bedrock does not meet); existing ML infrastructure and on-call;
regulatory or residency constraints Bedrock cannot meet. Bedrock when speed matters more than
optimisation, LLMs are off the critical path, the team is experimenting, there is no ML
infrastructure, or AWS-native integration matters. The recommendation:

- `fix_ownership_first` when the workload has no live owner: nobody would own the cost, the
  control or the failure of whatever is chosen (the analysis is still shown);
- `self_hosted` when residency requires it, or when high volume (or control, or existing
  infrastructure) holds and self-hosting is cheaper all in, people included;
- `hybrid` when the volume case holds but the traffic is spiky (peak > 3x mean: base load on
  GPUs, peaks on Bedrock), or control is needed but self-hosting everything costs more;
- `bedrock` otherwise.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from llmgov.commands.cost import FactQuery, as_date, end_of_day, start_of_day
from llmgov.commands.parsing import ParseError, tokenize
from llmgov.economics.breakeven import (
    HOURS_PER_MONTH,
    INSTANCE_GPUS,
    bedrock_monthly_cost,
    break_even,
    instance_throughput,
    instances_needed,
    model_size_billions,
    people_monthly_cost,
)
from llmgov.economics.unit import traffic_shape
from llmgov.models.facts import CostFact, GpuFact, Price, UsageFact
from llmgov.models.registry import OrganisationProfile, Workload, WorkloadStatus, is_slug

COMMAND = "/llm-decide"
EXAMPLE = "/llm-decide search-summaries"
WHAT_IF_EXAMPLE = "/llm-decide tokens_per_month=2B model=anthropic.claude-3-haiku-20240307-v1:0"
WINDOW_DAYS = 30
HOURLY_DAYS = 14
DAYS_PER_MONTH = HOURS_PER_MONTH / 24  # 30.42: the month the break-even prices
SPIKY_PEAK_TO_MEAN = 3.0
PREDICTABLE_CV = 0.35  # day-to-day variation above this is not "predictable"
WORTH_OPTIMISING = 0.2  # self-hosting must save at least 20% to beat "speed over optimisation"
NEW_WORKLOAD_DAYS = 90
DEFAULT_OPEN_MODEL = "llama-3.1-8b"
DEFAULT_PEAK_TO_MEAN = 3.0  # for a what-if without hourly data
DEFAULT_TARGET_UTILISATION = 0.6
SELF_HOSTED_RESIDENCY = {"on_prem", "on-prem", "onprem", "air_gapped", "air-gapped", "sovereign"}
# GPU memory per GPU family (GiB, public specifications), to rule out fleets a model cannot fit.
GPU_MEMORY_GIB = {"T4": 16, "A10G": 24, "L4": 24, "L40S": 48, "A100": 40, "H100": 80, "H200": 141}

RECOMMENDATIONS = ("bedrock", "self_hosted", "hybrid", "fix_ownership_first")

HELP = f"""*{COMMAND} [SLUG | key=value ...]*: Bedrock, self-host or hybrid, with the break-even.
• `{EXAMPLE}`: a registered workload, from its last {WINDOW_DAYS} days of data
• `{COMMAND} search-summaries peak_to_mean=5`: the same, with a what-if
• `{WHAT_IF_EXAMPLE}`: a workload that does not exist yet
• `{COMMAND}` alone opens a form
*Keys*: {{keys}}
Volumes take k, M, B suffixes (`2B` = 2,000,000,000 tokens a month); shares 0-1 or `80%`;
yes/no for flags."""


# ---- the request -----------------------------------------------------------------------
# Each parser returns the value, or raises ValueError saying what to give instead: the accepted
# range and an example, quoted after "give" in the error messages. The bounds keep every figure
# the decision computes finite (no inf, no NaN, no fleet of 10^300 GPUs).
MAX_TOKENS_PER_MONTH = 1e15  # 1000T: far beyond any one workload


def _finite(text: str, expect: str) -> float:
    """`text` as a finite number, or ValueError(expect)."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(expect) from None
    if not math.isfinite(value):
        raise ValueError(expect)
    return value


def _within(value: float, low: float, high: float, expect: str, *, above_low: bool) -> float:
    if value < low or (above_low and value == low) or value > high:
        raise ValueError(expect)
    return value


def _volume(text: str) -> float:
    expect = "a token count from 1 to 1000T, like 2B, 500M, 750k or 1.5e9"
    match = re.fullmatch(r"(\d[\d,]*(?:\.\d+)?(?:e\d+)?)\s*([kmbgt]?)", text.strip().lower())
    if not match:
        raise ValueError(expect)
    number = float(match.group(1).replace(",", ""))  # inf when too big for a float
    scale = {"": 1, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}[match.group(2)]
    return _within(number * scale, 1, MAX_TOKENS_PER_MONTH, expect, above_low=False)


def _number(
    low: float, high: float, expect: str, *, above_low: bool = False, percent: bool = False
) -> Callable[[str], float]:
    """A parser for a number from `low` (excluded with `above_low`) to `high`. Thousands
    separators and a leading $ are ignored; with `percent`, `80%` means 0.8."""

    def parse(text: str) -> float:
        text = text.strip().replace(",", "").lstrip("$")
        if percent and text.endswith("%"):
            value = _finite(text[:-1], expect) / 100
        else:
            value = _finite(text, expect)
        return _within(value, low, high, expect, above_low=above_low)

    return parse


def _whole_number(low: int, high: int, expect: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = _number(low, high, expect)(text)
        if not value.is_integer():
            raise ValueError(expect)
        return int(value)

    return parse


def _milliseconds(expect: str) -> Callable[[str], float]:
    within = _number(0, 600_000, expect, above_low=True)
    return lambda text: within(text.strip().lower().removesuffix("ms"))


def _flag(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("yes", "y", "true", "1", "on"):
        return True
    if lowered in ("no", "n", "false", "0", "off"):
        return False
    raise ValueError("yes or no")


def _word(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9:._/+-]{1,300}", text):
        raise ValueError("a single word (letters, digits, . : / - _ +)")
    return text


def _instance(text: str) -> str:
    text = text.lower()
    if text not in INSTANCE_GPUS:
        close = difflib.get_close_matches(text, list(INSTANCE_GPUS), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ValueError(f"a GPU instance type we have throughput for{hint}")
    return text


@dataclass(frozen=True)
class Key:
    parse: Callable[[str], Any]  # the value, or ValueError saying what to give instead
    help: str
    example: str  # a valid value, for error messages


def _price(side: str, example: str) -> Key:
    expect = f"a price per million tokens above 0 and up to 1,000, like {example}"
    return Key(
        _number(0, 1000, expect, above_low=True),
        f"Bedrock price per million {side} tokens",
        example,
    )


KEYS: dict[str, Key] = {
    "tokens_per_month": Key(_volume, "input + output tokens a month, e.g. 2B", "2B"),
    "input_share": Key(
        _number(0, 1, "a share from 0 to 1, or a percentage like 80%", percent=True),
        "share of tokens that are input, e.g. 0.8",
        "0.8",
    ),
    "model": Key(_word, "the Bedrock model id to price", "anthropic.claude-3-haiku-20240307-v1:0"),
    "price_input": _price("input", "0.25"),
    "price_output": _price("output", "1.25"),
    "open_model": Key(
        _word,
        f"the open model self-hosting would run (default {DEFAULT_OPEN_MODEL})",
        "llama-3.1-70b",
    ),
    "instance_type": Key(_instance, "the GPU instance type, e.g. g6.12xlarge", "g6.12xlarge"),
    "instance_price": Key(
        _number(0, 1000, "an hourly price above 0 and up to 1,000, like 4.60", above_low=True),
        "its hourly price",
        "4.60",
    ),
    "throughput_per_instance": Key(
        _number(1, 1_000_000, "output tokens per second from 1 to 1,000,000, like 1200"),
        "output tokens/s one instance serves (default: published benchmarks)",
        "1200",
    ),
    "min_instances": Key(
        _whole_number(1, 1000, "a whole number of instances from 1 to 1,000, like 2"),
        "the smallest fleet (2 for redundancy)",
        "2",
    ),
    "target_utilisation": Key(
        _number(0.01, 1, "a share from 0.01 to 1, or a percentage like 60%", percent=True),
        "share of GPU throughput to plan for at peak (0.6)",
        "0.6",
    ),
    "peak_to_mean": Key(
        _number(1, 1000, "a ratio from 1 to 1,000 (peak hour / mean hour), like 2.5"),
        "peak hour over mean hour, e.g. 2.5",
        "2.5",
    ),
    "daily_variation": Key(
        _number(0, 10, "a coefficient of variation from 0 to 10, like 0.2 or 20%", percent=True),
        "day-to-day variation (coefficient of variation)",
        "0.2",
    ),
    "latency_p95_ms": Key(
        _milliseconds("milliseconds above 0 and below 600,000, like 800"),
        "the latency objective, p95 in ms",
        "800",
    ),
    "observed_latency_ms": Key(
        _milliseconds("milliseconds above 0 and below 600,000, like 650"),
        "the p95 latency Bedrock gives today",
        "650",
    ),
    "ml_infra": Key(_flag, "do we already run GPUs, MLOps and on-call?", "yes"),
    "people_cost_per_year": Key(
        _number(
            0,
            10_000_000,
            "a yearly amount above 0 and up to 10,000,000, like 180000",
            above_low=True,
        ),
        "loaded cost of one senior engineer a year",
        "180000",
    ),
    "critical_path": Key(_flag, "is the LLM on the product's critical path?", "yes"),
    "experiment": Key(_flag, "is this an experiment?", "no"),
    "fine_tuning": Key(_flag, "does it need fine-tuning?", "no"),
    "deterministic": Key(_flag, "does it need deterministic output?", "no"),
    "aws_native": Key(_flag, "does AWS-native integration matter (Guardrails, KB, Agents)?", "yes"),
    "residency": Key(_word, "data residency: eu, us, on_prem, ...", "eu"),
    "exit_strategy": Key(_flag, "is there an exit strategy?", "yes"),
}
ALIASES = {
    "tokens": "tokens_per_month",
    "volume": "tokens_per_month",
    "ml_infrastructure": "ml_infra",
}


class BadValue(ParseError):
    """A known key with a value that is not valid; `reason` is what to give instead."""

    def __init__(self, key: str, value: str, reason: str):
        self.key = key
        self.reason = reason
        shown = value if len(value) <= 40 else value[:40] + "…"
        super().__init__(f"`{key}={shown}` is not valid: give {reason}.", _example_for(key))


def parse_override(key: str, value: str) -> tuple[str, Any]:
    """One what-if `key=value`: the key (aliases resolved) and its parsed value.

    ParseError when the key is unknown or the value empty; BadValue when the value is not
    valid (it names the key, what to give and an example)."""
    key = ALIASES.get(key.lower(), key.lower())
    if key not in KEYS:
        close = [k for k in KEYS if k.startswith(key)] or difflib.get_close_matches(
            key, list(KEYS), n=1
        )
        hint = f" Did you mean `{close[0]}`?" if close else ""
        raise ParseError(
            f"`{key}` is not a key I know.{hint} Keys: {', '.join(KEYS)}.", WHAT_IF_EXAMPLE
        )
    if not value:
        raise ParseError(f"`{key}=` has no value: {KEYS[key].help}.", WHAT_IF_EXAMPLE)
    try:
        return key, KEYS[key].parse(value)
    except ValueError as error:
        raise BadValue(key, value, str(error)) from None


def help_text() -> str:
    return HELP.replace("{keys}", ", ".join(f"`{name}`" for name in KEYS))


@dataclass(frozen=True)
class DecideRequest:
    slug: str | None
    overrides: dict[str, Any]
    as_of: date
    known_at: datetime | None = None

    def command_text(self) -> str:
        """The request as it would be typed again (for the Record decision button)."""
        parts = [self.slug] if self.slug else []
        parts += [f"{key}={_render(value)}" for key, value in self.overrides.items()]
        return " ".join(parts)


@dataclass(frozen=True)
class HelpRequest:
    text: str = field(default_factory=help_text)


@dataclass(frozen=True)
class OpenForm:
    """No argument: Slack opens the form (the CLI asks for a slug instead)."""


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parse_decide_text(
    text: str, *, today: date, known_at: datetime | None = None
) -> DecideRequest | HelpRequest | OpenForm:
    """Parse the command text; `ParseError` says what was wrong, with one correct example."""
    tokens = tokenize(text or "")
    if not tokens:
        return OpenForm()
    slug: str | None = None
    overrides: dict[str, Any] = {}
    for token in tokens:
        word = token.value
        if token.is_word and word.lower() in ("help", "-h", "--help", "?"):
            return HelpRequest()
        if not token.is_word:
            raise ParseError(f"`{token.raw}` is not a workload or a key=value.", EXAMPLE)
        if "=" in word:
            key, parsed = parse_override(*word.split("=", 1))
            overrides[key] = parsed
            continue
        if slug is not None:
            raise ParseError(
                f"Two workloads given (`{slug}` and `{word}`): decide one at a time.", EXAMPLE
            )
        if not is_slug(word.lower()):
            raise ParseError(f"`{word}` is not a workload slug or a key=value.", EXAMPLE)
        slug = word.lower()
    if slug is None and "tokens_per_month" not in overrides:
        raise ParseError(
            "A what-if needs at least `tokens_per_month=` (or name a registered workload).",
            WHAT_IF_EXAMPLE,
        )
    return DecideRequest(slug=slug, overrides=overrides, as_of=today, known_at=known_at)


def _example_for(key: str) -> str:
    return f"{COMMAND} search-summaries {key}={KEYS[key].example}"


# ---- prices ----------------------------------------------------------------------------
@dataclass(frozen=True)
class TokenPriceQuote:
    input_per_mtok: float
    output_per_mtok: float
    source: str


@dataclass(frozen=True)
class GpuPriceQuote:
    per_hour: float
    source: str


class PriceSource(Protocol):
    """Where prices come from. The database's `prices` table first; `bot/` chains in the
    bundled catalogues of `collectors.prices` (commands may not import collectors)."""

    def token(self, model_id: str) -> TokenPriceQuote | None: ...

    def gpu_hour(self, instance_type: str) -> GpuPriceQuote | None: ...


class DatabasePrices:
    """Prices recorded in the `prices` table, falling back to `fallback` when given."""

    def __init__(self, session: Session, fallback: PriceSource | None = None):
        self.session = session
        self.fallback = fallback

    def token(self, model_id: str) -> TokenPriceQuote | None:
        rows = {
            unit: (amount, source, as_of)
            for unit, amount, source, as_of in self.session.execute(
                select(Price.unit, Price.amount, Price.source, Price.as_of).where(
                    Price.kind == "token", Price.key == model_id
                )
            )
        }
        if "per_mtok_input" in rows and "per_mtok_output" in rows:
            _amount, source, as_of = rows["per_mtok_input"]
            return TokenPriceQuote(
                float(rows["per_mtok_input"][0]),
                float(rows["per_mtok_output"][0]),
                f"{source}, {as_of}",
            )
        return self.fallback.token(model_id) if self.fallback else None

    def gpu_hour(self, instance_type: str) -> GpuPriceQuote | None:
        row = self.session.execute(
            select(Price.amount, Price.source, Price.as_of)
            .where(Price.kind == "gpu_hour", Price.key == instance_type)
            .order_by(Price.region)
            .limit(1)
        ).first()
        if row is not None:
            return GpuPriceQuote(float(row[0]), f"{row[1]}, {row[2]}")
        return self.fallback.gpu_hour(instance_type) if self.fallback else None


# ---- the answer ------------------------------------------------------------------------
@dataclass(frozen=True)
class Criterion:
    key: str
    side: str  # self_hosted | bedrock
    title: str
    holds: bool
    evidence: str


@dataclass(frozen=True)
class Inputs:
    """What the decision was computed from; `sources` says where each value came from."""

    slug: str | None
    monthly_tokens: float
    input_share: float
    model: str | None
    price_input: float | None  # per million tokens
    price_output: float | None
    open_model: str
    instance_type: str | None
    instance_price: float | None
    throughput_per_instance: float | None  # output tokens/s at saturation
    throughput_source: str | None
    min_instances: int
    target_utilisation: float
    peak_to_mean: float
    daily_variation: float | None
    latency_objective_ms: float | None
    observed_latency_ms: float | None
    ml_infra: bool
    people_cost_per_year: float
    critical_path: bool
    experiment: bool
    fine_tuning: bool
    deterministic: bool
    aws_native: bool
    residency: str | None
    exit_strategy: str | None
    owner_id: str | None
    owner_label: str | None
    owner_active: bool
    team: str | None
    platform: str | None
    status: str | None
    age_days: int | None
    measured_monthly_cost: float | None  # billed, last 30 days scaled to a month
    sources: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        data = {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if name not in ("sources",)
        }
        data["sources"] = dict(self.sources)
        return data


@dataclass(frozen=True)
class Decision:
    request: DecideRequest
    currency: str
    inputs: Inputs
    recommendation: str
    summary: str  # one sentence: why
    criteria: tuple[Criterion, ...]
    bedrock_monthly: float | None
    self_hosted_infra_monthly: float | None
    self_hosted_people_monthly: float
    instances: int | None
    fleet_utilisation: float | None
    break_even_tokens: float | None  # None: self-hosting never breaks even
    hybrid_monthly: float | None
    sensitivity_volume: tuple[
        tuple[float, float | None, float | None], ...
    ]  # (factor, bedrock, self)
    sensitivity_peak: tuple[
        tuple[float, float | None, float | None], ...
    ]  # (p2m, self, break-even)
    risks: tuple[str, ...]
    ownership: dict[str, str]  # cost / control / failure → who
    notes: tuple[str, ...] = ()

    @property
    def self_hosted_monthly(self) -> float | None:
        if self.self_hosted_infra_monthly is None:
            return None
        return self.self_hosted_infra_monthly + self.self_hosted_people_monthly

    @property
    def distance_to_break_even(self) -> float | None:
        """Volume over the break-even volume (2.0: twice the break-even)."""
        if not self.break_even_tokens:
            return None
        return self.inputs.monthly_tokens / self.break_even_tokens

    @property
    def has_exit_strategy(self) -> bool:
        return bool(self.inputs.exit_strategy)


@dataclass
class Measured:
    """What the facts say about a registered workload over the window."""

    monthly_tokens: float | None = None
    input_share: float | None = None
    peak_to_mean: float | None = None
    daily_variation: float | None = None
    hourly_tokens: np.ndarray | None = None
    latency_p95_ms: float | None = None
    model: str | None = None
    tokens_per_request: tuple[float, float] | None = None  # (input, output) per call
    monthly_cost: float | None = None
    blended_price: float | None = None  # billed cost per million tokens
    instance_type: str | None = None
    days: int = 0


def _load_workload(session: Session, slug: str) -> Workload:
    workload = session.scalar(select(Workload).where(Workload.slug == slug))
    if workload is None:
        known = session.scalars(select(Workload.slug)).all()
        close = difflib.get_close_matches(slug, list(known), n=1, cutoff=0.6)
        hint = f" Did you mean `{close[0]}`?" if close else ""
        raise ParseError(
            f"There is no workload `{slug}`.{hint} For a hypothetical one, give key=values.",
            WHAT_IF_EXAMPLE,
        )
    return workload


def measure(
    session: Session, workload: Workload, as_of: date, known_at: datetime | None
) -> Measured:
    """Volume, mix, traffic shape, latency, model and billed cost over the last 30 days."""
    facts = FactQuery(session, [workload.id], known_at)
    start = as_of - timedelta(days=WINDOW_DAYS - 1)
    where = facts.usage_where(start, as_of)
    measured = Measured()

    day = facts.usage_day()
    daily = session.execute(
        select(
            day,
            func.sum(UsageFact.input_tokens),
            func.sum(UsageFact.output_tokens),
            func.sum(UsageFact.invocations),
        )
        .where(*where)
        .group_by(day)
        .order_by(day)
    ).all()
    hourly_start = as_of - timedelta(days=HOURLY_DAYS - 1)
    hourly_rows = session.execute(
        select(UsageFact.hour, func.sum(UsageFact.input_tokens + UsageFact.output_tokens))
        .where(*facts.usage_where(hourly_start, as_of))
        .group_by(UsageFact.hour)
        .order_by(UsageFact.hour)
    ).all()
    from_gpus = not daily
    if from_gpus:  # a self-hosted fleet: tokens served from the GPU metrics
        daily, hourly_rows = _gpu_tokens(session, workload.id, start, hourly_start, as_of, known_at)

    if daily:
        by_day = {as_date(row[0]): row for row in daily}
        first = min(by_day)
        days = [first + timedelta(days=i) for i in range((as_of - first).days + 1)]
        inputs = np.array([float(by_day[d][1] or 0) if d in by_day else 0.0 for d in days])
        outputs = np.array([float(by_day[d][2] or 0) if d in by_day else 0.0 for d in days])
        calls = float(sum(float(row[3] or 0) for row in daily))
        hourly = _hourly_series(hourly_rows)
        shape = traffic_shape(hourly[None, :], (inputs + outputs)[None, :])
        total = float(inputs.sum() + outputs.sum())
        measured.monthly_tokens = float(shape.monthly_tokens[0])
        # tokens served by a fleet do not say how many were input: leave the mix to defaults
        measured.input_share = float(inputs.sum() / total) if total and not from_gpus else None
        measured.peak_to_mean = float(shape.peak_to_mean[0]) if hourly.size else None
        measured.daily_variation = float(shape.daily_cv[0]) if len(days) > 1 else None
        measured.hourly_tokens = hourly if hourly.size else None
        measured.days = len(days)
        if calls and not from_gpus:
            measured.tokens_per_request = (
                float(inputs.sum()) / calls,
                float(outputs.sum()) / calls,
            )

    latency = session.execute(
        select(
            func.sum(UsageFact.latency_ms_p95 * UsageFact.invocations),
            func.sum(UsageFact.invocations),
        ).where(*where, UsageFact.latency_ms_p95.is_not(None))
    ).first()
    if latency and latency[1]:
        measured.latency_p95_ms = float(latency[0]) / float(latency[1])
    model = session.execute(
        select(UsageFact.model_id)
        .where(*where, UsageFact.model_id.is_not(None))
        .group_by(UsageFact.model_id)
        .order_by(func.sum(UsageFact.input_tokens + UsageFact.output_tokens).desc())
        .limit(1)
    ).scalar()
    measured.model = model

    billed_through = facts.billed_through(as_of)
    if billed_through is not None and billed_through >= start:
        cost_where = facts.cost_where(start, billed_through)
        billed = session.scalar(select(func.sum(CostFact.cost)).where(*cost_where))
        billed_days = (billed_through - start).days + 1
        if billed:
            measured.monthly_cost = float(billed) / billed_days * DAYS_PER_MONTH
            billed_tokens = session.scalar(
                select(func.sum(UsageFact.input_tokens + UsageFact.output_tokens)).where(
                    *facts.usage_where(start, billed_through)
                )
            )
            covered = measured.days and min(measured.days, billed_days)
            if billed_tokens and covered == billed_days:
                measured.blended_price = float(billed) / float(billed_tokens) * 1e6
    instance = session.execute(
        select(GpuFact.instance_type)
        .where(GpuFact.workload_id == workload.id, GpuFact.instance_type.is_not(None))
        .group_by(GpuFact.instance_type)
        .order_by(func.count().desc())
        .limit(1)
    ).scalar()
    measured.instance_type = instance
    return measured


def _gpu_tokens(session, workload_id, start, hourly_start, as_of, known_at):
    """Daily and hourly tokens served by a self-hosted fleet (vLLM counters)."""
    conditions = [
        GpuFact.workload_id == workload_id,
        GpuFact.hour >= start_of_day(start),
        GpuFact.hour < end_of_day(as_of),
        GpuFact.tokens_served.is_not(None),
    ]
    if known_at is not None:
        conditions.append(GpuFact.collected_at < known_at)
    rows = session.execute(
        select(GpuFact.hour, func.sum(GpuFact.tokens_served))
        .where(*conditions)
        .group_by(GpuFact.hour)
        .order_by(GpuFact.hour)
    ).all()
    by_day: dict[date, float] = {}
    for hour, tokens in rows:
        key = as_date(hour)
        by_day[key] = by_day.get(key, 0.0) + float(tokens or 0)
    # input/output split unknown for a fleet: all tokens count as served, calls unknown
    daily = [(day, 0.0, tokens, 0.0) for day, tokens in sorted(by_day.items())]
    hourly = [(h, t) for h, t in rows if as_date(h) >= hourly_start]
    return daily, hourly


def _hourly_series(rows) -> np.ndarray:
    """Hourly token counts on a consecutive axis (missing hours are zero traffic)."""
    if not rows:
        return np.zeros(0)
    hours = [_as_datetime(row[0]) for row in rows]
    first = min(hours)
    count = int((max(hours) - first).total_seconds() // 3600) + 1
    series = np.zeros(count)
    for hour, (_, tokens) in zip(hours, rows, strict=True):
        series[int((hour - first).total_seconds() // 3600)] += float(tokens or 0)
    return series


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


DEFAULT_INPUT_SHARE = 0.75


def _organisation(session: Session) -> OrganisationProfile:
    return session.get(OrganisationProfile, 1) or OrganisationProfile(
        currency="USD", ml_infrastructure=False, people_cost_per_year=Decimal(180000)
    )


def gather_inputs(
    session: Session, request: DecideRequest, prices: PriceSource
) -> tuple[Inputs, Measured]:
    """Measured, registry, organisation and what-if values, each with where it came from."""
    org = _organisation(session)
    workload = _load_workload(session, request.slug) if request.slug else None
    measured = (
        measure(session, workload, request.as_of, request.known_at) if workload else Measured()
    )
    constraints = dict(workload.constraints or {}) if workload else {}
    gpu = dict(workload.gpu or {}) if workload else {}
    given = request.overrides
    sources: dict[str, str] = {}
    window = f"measured, last {WINDOW_DAYS} days"

    def pick(name: str, *candidates: tuple[Any, str], default: Any = None) -> Any:
        if name in given:
            sources[name] = "what-if"
            return given[name]
        for value, source in candidates:
            if value is not None:
                sources[name] = source
                return value
        sources[name] = "default"
        return default

    tokens = pick("tokens_per_month", (measured.monthly_tokens, window), default=0.0)
    input_share = pick("input_share", (measured.input_share, window), default=DEFAULT_INPUT_SHARE)
    model = pick("model", (measured.model, window))
    quote = prices.token(model) if model else None
    price_input = pick("price_input", (quote and quote.input_per_mtok, quote and quote.source))
    price_output = pick("price_output", (quote and quote.output_per_mtok, quote and quote.source))
    if price_input is None and price_output is None and measured.blended_price:
        # No list price for the model: the billed cost per token is the price paid.
        price_input = price_output = measured.blended_price
        sources["price_input"] = sources["price_output"] = "measured: billed cost / tokens"
    elif price_input is None or price_output is None:
        price_input = price_input if price_input is not None else price_output
        price_output = price_output if price_output is not None else price_input

    ml_infra = pick("ml_infra", (bool(org.ml_infrastructure), "organisation profile"))
    people = pick("people_cost_per_year", (float(org.people_cost_per_year), "organisation profile"))
    critical = pick(
        "critical_path", (workload.critical_path if workload else None, "registry"), default=False
    )
    experiment = pick(
        "experiment",
        (workload.status == WorkloadStatus.EXPERIMENT.value if workload else None, "registry"),
        default=False,
    )
    exit_text = workload.exit_strategy if workload else None
    if "exit_strategy" in given:
        exit_text = "(what-if: an exit strategy exists)" if given["exit_strategy"] else None
        sources["exit_strategy"] = "what-if"
    else:
        sources["exit_strategy"] = "registry" if workload else "default"
    open_model = pick("open_model", (gpu.get("model"), "registry"), default=DEFAULT_OPEN_MODEL)
    owner = workload.owner if workload else None
    created = workload.created_at if workload else None
    age = (request.as_of - created.date()).days if created else None
    age = age if age is not None and age >= 0 else None  # registered after the as-of date
    inputs = Inputs(
        slug=workload.slug if workload else None,
        monthly_tokens=float(tokens),
        input_share=float(input_share),
        model=model,
        price_input=price_input,
        price_output=price_output,
        open_model=open_model,
        instance_type=None,  # chosen below, with its price and throughput
        instance_price=None,
        throughput_per_instance=None,
        throughput_source=None,
        min_instances=pick(
            "min_instances", (gpu.get("min_instances"), "registry"), default=2 if critical else 1
        ),
        target_utilisation=pick("target_utilisation", default=DEFAULT_TARGET_UTILISATION),
        peak_to_mean=pick(
            "peak_to_mean",
            (measured.peak_to_mean, "measured, last 14 days hourly"),
            default=DEFAULT_PEAK_TO_MEAN,
        ),
        daily_variation=pick("daily_variation", (measured.daily_variation, window)),
        latency_objective_ms=pick(
            "latency_p95_ms", (constraints.get("latency_p95_ms"), "registry constraints")
        ),
        observed_latency_ms=pick(
            "observed_latency_ms", (measured.latency_p95_ms, f"{window} (hourly p95, weighted)")
        ),
        ml_infra=bool(ml_infra),
        people_cost_per_year=float(people),
        critical_path=bool(critical),
        experiment=bool(experiment),
        fine_tuning=bool(
            pick("fine_tuning", (constraints.get("fine_tuning"), "registry"), default=False)
        ),
        deterministic=bool(
            pick("deterministic", (constraints.get("deterministic"), "registry"), default=False)
        ),
        aws_native=bool(
            pick("aws_native", (constraints.get("aws_native"), "registry"), default=False)
        ),
        residency=pick("residency", (constraints.get("data_residency"), "registry constraints")),
        exit_strategy=exit_text,
        owner_id=owner.slack_id if owner else None,
        owner_label=owner.label if owner else None,
        owner_active=bool(owner and owner.active),
        team=workload.team.slug if workload and workload.team else None,
        platform=workload.platform if workload else None,
        status=workload.status if workload else None,
        age_days=age,
        measured_monthly_cost=measured.monthly_cost,
        sources=sources,
    )
    return _choose_instance(inputs, measured, given, gpu, prices), measured


def _choose_instance(
    inputs: Inputs, measured: Measured, given: dict[str, Any], gpu: dict[str, Any], prices
) -> Inputs:
    """The instance type (given, registered, measured, else the cheapest fleet that fits the
    model and serves the peak), its hourly price and its published throughput."""
    sources = dict(inputs.sources)
    per_request = measured.tokens_per_request or (None, None)
    named = given.get("instance_type") or gpu.get("instance_type") or measured.instance_type
    if named:
        sources["instance_type"] = (
            "what-if"
            if "instance_type" in given
            else "registry"
            if gpu.get("instance_type")
            else "measured (GPU metrics)"
        )
        candidates = [named]
    else:
        sources["instance_type"] = "cheapest fleet that fits the model"
        candidates = [t for t in INSTANCE_GPUS if _fits(t, inputs.open_model)]
    options = []
    for instance_type in candidates:
        found = instance_throughput(
            instance_type,
            inputs.open_model,
            input_tokens=per_request[0],
            output_tokens=per_request[1],
        )
        if "throughput_per_instance" in given:  # measured on your own stack, say
            found = (given["throughput_per_instance"], None)
        if "instance_price" in given:
            quote = GpuPriceQuote(given["instance_price"], "what-if")
        else:
            quote = prices.gpu_hour(instance_type)
        if found is None or quote is None:
            continue
        options.append((instance_type, quote, found[0], found[1]))
    if not options:
        sources["instance_price"] = "unknown"
        return replace(inputs, instance_type=named, sources=sources)
    if len(options) > 1:  # the cheapest fleet at this volume and peak
        result = break_even(
            inputs.monthly_tokens,
            1 - inputs.input_share,
            inputs.price_input or 0.0,
            inputs.price_output or 0.0,
            np.array([o[2] for o in options]),
            np.array([o[1].per_hour for o in options]),
            peak_to_mean=inputs.peak_to_mean,
            target_utilisation=inputs.target_utilisation,
            people_monthly=0.0,
            min_instances=inputs.min_instances,
        )
        best = int(np.argmin(result.self_hosted_infra_monthly))
        options = [options[best]]
    instance_type, quote, throughput, anchor = options[0]
    sources["instance_price"] = quote.source
    sources["throughput_per_instance"] = "what-if" if anchor is None else "published benchmark"
    source = (
        f"what-if: {throughput:,.0f} output tokens/s per instance"
        if anchor is None
        else f"{anchor.source_id}: {anchor.model} on {anchor.gpu} ({anchor.engine}), "
        f"{anchor.output_tokens_per_second_per_gpu:,.0f} output tokens/s per GPU"
        + (" (offline upper bound)" if anchor.upper_bound else "")
    )
    return replace(
        inputs,
        instance_type=instance_type,
        instance_price=quote.per_hour,
        throughput_per_instance=throughput,
        throughput_source=source,
        sources=sources,
    )


def _fits(instance_type: str, open_model: str) -> bool:
    """Whether the model's FP16 weights plus 20% headroom fit in the instance's GPU memory."""
    family, count = INSTANCE_GPUS[instance_type]
    memory = GPU_MEMORY_GIB.get(family)
    size = _model_billions(open_model)
    return memory is not None and size * 2 * 1.2 <= memory * count


def _model_billions(name: str) -> float:
    return model_size_billions(name) or 8.0


def build_decision(
    session: Session, request: DecideRequest, *, prices: PriceSource | None = None
) -> Decision:
    """The whole `/llm-decide` answer for a request, as data."""
    prices = prices or DatabasePrices(session)
    inputs, measured = gather_inputs(session, request, prices)
    currency = _organisation(session).currency
    notes: list[str] = []
    people = float(people_monthly_cost(inputs.people_cost_per_year, inputs.ml_infra))
    priced = inputs.price_input is not None and inputs.instance_price is not None
    result = None
    if priced and inputs.throughput_per_instance:
        result = break_even(
            inputs.monthly_tokens,
            1 - inputs.input_share,
            inputs.price_input,
            inputs.price_output,
            inputs.throughput_per_instance,
            inputs.instance_price,
            peak_to_mean=inputs.peak_to_mean,
            target_utilisation=inputs.target_utilisation,
            people_monthly=people,
            min_instances=inputs.min_instances,
        )
    if inputs.price_input is None:
        notes.append(
            "No Bedrock price: give `model=` (a Bedrock model id) or `price_input=`/`price_output=`."
        )
    if inputs.instance_price is None or inputs.throughput_per_instance is None:
        notes.append(
            f"No self-hosted price or throughput for `{inputs.instance_type or 'any instance'}`: "
            "give `instance_type=` (e.g. g6.12xlarge) and, if unlisted, `instance_price=`."
        )
    if measured.days and measured.days < WINDOW_DAYS and request.slug:
        notes.append(f"Usage metrics cover {measured.days} of the last {WINDOW_DAYS} days.")

    bedrock = float(result.bedrock_monthly) if result is not None else None
    if bedrock is None and inputs.price_input is not None:
        bedrock = float(
            bedrock_monthly_cost(
                inputs.monthly_tokens,
                1 - inputs.input_share,
                inputs.price_input,
                inputs.price_output,
            )
        )
    infra = float(result.self_hosted_infra_monthly) if result is not None else None
    breaks = bool(result.breaks_even) if result is not None else False
    break_even_tokens = (
        float(result.break_even_monthly_tokens) if result is not None and breaks else None
    )
    hybrid = _hybrid_monthly(inputs, measured, people) if result is not None else None

    criteria = _criteria(inputs, bedrock, infra, people, break_even_tokens, result is not None)
    recommendation, summary = _recommend(inputs, criteria, bedrock, infra, people)
    volume_rows: tuple = ()
    peak_rows: tuple = ()
    if result is not None:
        volume_rows = tuple(
            (float(f), float(b), float(sh))
            for f, b, sh in zip(
                result.volume_factors,
                result.bedrock_by_volume,
                result.self_hosted_by_volume,
                strict=True,
            )
        )
        peak_rows = tuple(
            (float(p), float(sh), None if math.isnan(be) else float(be))
            for p, sh, be in zip(
                result.peak_to_mean_values,
                result.self_hosted_by_peak,
                result.break_even_by_peak,
                strict=True,
            )
        )
    return Decision(
        request=request,
        currency=currency,
        inputs=inputs,
        recommendation=recommendation,
        summary=summary,
        criteria=criteria,
        bedrock_monthly=bedrock,
        self_hosted_infra_monthly=infra,
        self_hosted_people_monthly=people,
        instances=int(result.instances) if result is not None else None,
        fleet_utilisation=float(result.fleet_utilisation) if result is not None else None,
        break_even_tokens=break_even_tokens,
        hybrid_monthly=hybrid,
        sensitivity_volume=volume_rows,
        sensitivity_peak=peak_rows,
        risks=tuple(_risks(inputs, recommendation, result, break_even_tokens)),
        ownership=_ownership(inputs, recommendation),
        notes=tuple(notes),
    )


def _hybrid_monthly(inputs: Inputs, measured: Measured, people: float) -> float | None:
    """Base load on GPUs sized for the mean rate, the hours above it on Bedrock.

    Needs the hourly series (how much traffic sits above the fleet's capacity), scaled to the
    decision's volume; None for a what-if without one."""
    hourly = measured.hourly_tokens
    if hourly is None or not hourly.sum() or inputs.sources.get("peak_to_mean") == "what-if":
        return None  # no measured shape, or a what-if shape the hours do not have
    output_share = 1 - inputs.input_share
    fleet = float(
        instances_needed(
            inputs.monthly_tokens,
            output_share,
            inputs.throughput_per_instance,
            1.0,
            inputs.target_utilisation,
            inputs.min_instances,
        )
    )
    # capacity in total tokens an hour (throughput is output tokens per second)
    capacity = fleet * inputs.throughput_per_instance * inputs.target_utilisation * 3600
    capacity /= max(output_share, 1e-9)
    scale = inputs.monthly_tokens / (hourly.mean() * 730) if hourly.mean() else 1.0
    scaled = hourly * scale  # the measured shape at the decision's volume
    overflow = float(np.maximum(scaled - capacity, 0).sum() / scaled.sum())
    bedrock = float(
        bedrock_monthly_cost(
            inputs.monthly_tokens * overflow, output_share, inputs.price_input, inputs.price_output
        )
    )
    return fleet * inputs.instance_price * 730 + people + bedrock


def _criteria(
    inputs: Inputs,
    bedrock: float | None,
    infra: float | None,
    people: float,
    break_even: float | None,
    compared: bool,
) -> tuple[Criterion, ...]:
    tokens = inputs.monthly_tokens
    variation = inputs.daily_variation
    predictable = (variation is None or variation <= PREDICTABLE_CV) and (
        inputs.peak_to_mean <= 2 * SPIKY_PEAK_TO_MEAN
    )
    shape = f"peak hour {inputs.peak_to_mean:.1f}x the mean" + (
        f", day-to-day variation {variation:.0%}" if variation is not None else ""
    )
    if not compared:
        volume_holds, volume_evidence = False, "unknown: prices or throughput missing (see notes)"
    elif break_even is None:
        volume_holds = False
        volume_evidence = (
            f"{fmt_tokens(tokens)} tokens a month; self-hosting never breaks even at these "
            "prices (a full GPU costs more per token than Bedrock)"
        )
    else:
        above = tokens >= break_even
        volume_holds = above and predictable
        ratio = tokens / break_even
        distance = f"{ratio:.1f}x" if ratio >= 1 else f"{ratio:.0%} of"
        volume_evidence = (
            f"{fmt_tokens(tokens)} tokens a month is {distance} the break-even "
            f"of {fmt_tokens(break_even)}; {shape}" + ("" if predictable else " (not predictable)")
        )

    control_reasons = []
    if inputs.fine_tuning:
        control_reasons.append("needs fine-tuning")
    if inputs.deterministic:
        control_reasons.append("needs deterministic output")
    latency_missed = (
        inputs.latency_objective_ms is not None
        and inputs.observed_latency_ms is not None
        and inputs.observed_latency_ms > inputs.latency_objective_ms
    )
    if latency_missed:
        control_reasons.append(
            f"p95 {inputs.observed_latency_ms:,.0f} ms misses the {inputs.latency_objective_ms:,.0f} ms objective"
        )
    if control_reasons:
        control_evidence = "; ".join(control_reasons)
    elif inputs.latency_objective_ms is not None and inputs.observed_latency_ms is not None:
        control_evidence = (
            f"no fine-tuning or determinism needed; p95 {inputs.observed_latency_ms:,.0f} ms "
            f"meets the {inputs.latency_objective_ms:,.0f} ms objective"
        )
    else:
        control_evidence = "no fine-tuning, determinism or latency objective recorded"

    residency = (inputs.residency or "").lower()
    regulatory = residency in SELF_HOSTED_RESIDENCY
    if regulatory:
        residency_evidence = f"data residency `{inputs.residency}`: Bedrock cannot meet it"
    elif residency:
        residency_evidence = f"`{inputs.residency}` residency is met by Bedrock in those regions"
    else:
        residency_evidence = "no residency or regulatory constraint recorded"

    saving = (bedrock - (infra + people)) if bedrock is not None and infra is not None else None
    small_saving = saving is None or bedrock is None or saving < WORTH_OPTIMISING * bedrock
    new = inputs.age_days is not None and inputs.age_days < NEW_WORKLOAD_DAYS
    if saving is None:
        speed_evidence = "the saving from self-hosting is unknown"
    elif saving <= 0:
        speed_evidence = (
            f"self-hosting would cost {fmt_money(-saving)} a month more, people included"
        )
    else:
        speed_evidence = (
            f"self-hosting would save {fmt_money(saving)} a month "
            f"({saving / bedrock:.0%}), people included"
        )
    if new:
        speed_evidence += f"; the workload is {inputs.age_days} days old"

    return (
        Criterion(
            "high_volume",
            "self_hosted",
            "Predictable, high volume above break-even",
            volume_holds,
            volume_evidence,
        ),
        Criterion(
            "model_control",
            "self_hosted",
            "Fine-grained model control (fine-tuning, determinism, strict latency)",
            bool(control_reasons),
            control_evidence,
        ),
        Criterion(
            "ml_infrastructure",
            "self_hosted",
            "Existing ML infrastructure and on-call",
            inputs.ml_infra,
            _source_text("ml_infra", inputs),
        ),
        Criterion(
            "regulatory",
            "self_hosted",
            "Regulatory or residency constraints",
            regulatory,
            residency_evidence,
        ),
        Criterion(
            "speed_over_optimisation",
            "bedrock",
            "Speed matters more than optimisation",
            small_saving or new,
            speed_evidence,
        ),
        Criterion(
            "off_critical_path",
            "bedrock",
            "LLMs are off the critical path",
            not inputs.critical_path,
            "on the critical path" if inputs.critical_path else "not on the critical path",
        ),
        Criterion(
            "experimenting",
            "bedrock",
            "The team is experimenting",
            inputs.experiment,
            "an experiment" if inputs.experiment else "in production, not an experiment",
        ),
        Criterion(
            "no_ml_infrastructure",
            "bedrock",
            "No ML infrastructure",
            not inputs.ml_infra,
            _source_text("ml_infra", inputs),
        ),
        Criterion(
            "aws_native",
            "bedrock",
            "AWS-native integration matters",
            inputs.aws_native,
            "uses or needs Bedrock features (Guardrails, Knowledge Bases, Agents)"
            if inputs.aws_native
            else "not recorded as needed",
        ),
    )


def _source_text(name: str, inputs: Inputs) -> str:
    value = getattr(inputs, name)
    where = inputs.sources.get(name, "default")
    if name == "ml_infra":
        state = "runs GPUs, MLOps and on-call" if value else "no GPU platform or on-call yet"
        return f"{state} ({where})"
    return f"{value} ({where})"


def _recommend(
    inputs: Inputs, criteria: tuple[Criterion, ...], bedrock, infra, people
) -> tuple[str, str]:
    holds = {c.key: c.holds for c in criteria}
    cheaper = bedrock is not None and infra is not None and infra + people < bedrock
    spiky = inputs.peak_to_mean > SPIKY_PEAK_TO_MEAN
    if inputs.slug and (
        not inputs.owner_active or inputs.status == WorkloadStatus.DISCOVERED.value
    ):
        who = "has no owner" if not inputs.owner_label else "has an owner who has left"
        return "fix_ownership_first", (
            f"{inputs.slug} {who}: decide who owns its cost, control and failure before "
            "changing how it runs."
        )
    if holds["regulatory"]:
        return "self_hosted", "Residency requires it: Bedrock cannot meet the constraint."
    if holds["high_volume"]:
        if spiky:
            return "hybrid", (
                "Volume is above break-even but peaks are "
                f"{inputs.peak_to_mean:.1f}x the mean: run the base load on GPUs, send peaks to "
                "Bedrock."
            )
        return "self_hosted", "Predictable volume above break-even: self-hosting is cheaper all in."
    if holds["model_control"]:
        if cheaper or holds["ml_infrastructure"]:
            return (
                "self_hosted",
                "It needs model control Bedrock does not give, at a cost that works.",
            )
        return "hybrid", (
            "It needs model control, but self-hosting all of it costs more: self-host the part "
            "that needs control, keep the rest on Bedrock."
        )
    if cheaper and holds["ml_infrastructure"] and not holds["speed_over_optimisation"]:
        return "self_hosted" if not spiky else "hybrid", (
            "Self-hosting on the existing platform saves enough to be worth it."
        )
    reasons = [_mid_sentence(c.title) for c in criteria if c.side == "bedrock" and c.holds]
    if not reasons:
        return "bedrock", "No criterion for self-hosting holds."
    return "bedrock", f"No criterion for self-hosting holds, and {'; '.join(reasons[:3])}."


def _mid_sentence(title: str) -> str:
    """A criterion's title inside a sentence: "The team is..." -> "the team is...", but
    "LLMs are..." and "AWS-native..." keep their capitals."""
    first_word = title.split(" ", 1)[0]
    if any(letter.isupper() for letter in first_word[1:]):
        return title
    return title[:1].lower() + title[1:]


def _risks(inputs: Inputs, recommendation: str, result, break_even: float | None) -> list[str]:
    risks = []
    if not inputs.exit_strategy:
        risks.append("No exit strategy is recorded: write down how you would leave this platform.")
    if recommendation in ("self_hosted", "hybrid") and not inputs.ml_infra:
        risks.append(
            "Nobody runs GPUs or an on-call rotation today: self-hosting means building both "
            "(the people cost assumes 1.5 engineers)."
        )
    if recommendation in ("self_hosted", "hybrid") and inputs.critical_path:
        risks.append("On the critical path: a GPU outage is a product outage; plan redundancy.")
    if result is not None and float(result.fleet_utilisation) < 0.3:
        risks.append(
            f"A fleet sized for the peak would sit at {float(result.fleet_utilisation):.0%} "
            "average utilisation: idle GPUs are paid for."
        )
    if break_even and 0.7 <= inputs.monthly_tokens / break_even <= 1.3:
        risks.append("Within 30% of break-even: a modest change in volume flips the answer.")
    if inputs.throughput_source and "upper bound" in inputs.throughput_source:
        risks.append("The throughput figure is an offline upper bound: real serving is slower.")
    if (
        inputs.latency_objective_ms is not None
        and inputs.observed_latency_ms is not None
        and inputs.observed_latency_ms > inputs.latency_objective_ms
        and recommendation == "bedrock"
    ):
        risks.append("The latency objective is not met today; Bedrock alone will not fix that.")
    if inputs.platform and inputs.platform != "other":
        current = "self_hosted" if inputs.platform in ("self_hosted", "sagemaker") else "bedrock"
        if recommendation in ("bedrock", "self_hosted") and recommendation != current:
            risks.append(
                f"It runs on {current.replace('_', '-')} today: migration cost and risk are not "
                "in these figures."
            )
    if inputs.sources.get("peak_to_mean") == "default":
        risks.append(
            f"Traffic shape unknown: peak assumed {DEFAULT_PEAK_TO_MEAN:.0f}x mean (`peak_to_mean=`)."
        )
    return risks


def _ownership(inputs: Inputs, recommendation: str) -> dict[str, str]:
    owner = f"<@{inputs.owner_id}>" if inputs.owner_id else inputs.owner_label or "nobody yet"
    team = f"team {inputs.team}" if inputs.team else "the owning team"
    control = {
        "bedrock": f"{team}: prompts, model choice, quotas; AWS runs the model",
        "self_hosted": f"{team}: models, GPUs, scaling and upgrades",
        "hybrid": f"{team}: both platforms and the routing between them",
    }.get(recommendation, "undecided until someone owns it")
    failure = {
        "bedrock": "AWS for the service; the owner for quotas, throttling and retries",
        "self_hosted": f"{team}'s on-call" + ("" if inputs.ml_infra else " (to be set up)"),
        "hybrid": f"{team}'s on-call for GPUs; AWS for the Bedrock share",
    }.get(recommendation, "nobody: that is the problem")
    return {"cost": owner, "control": control, "failure": failure}


def fmt_tokens(value: float) -> str:
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:,.1f}{suffix}".replace(".0" + suffix, suffix)
    return f"{value:,.0f}"


def fmt_money(value: float) -> str:
    return f"${value:,.0f}"


def _cents(value: float | None) -> float | None:
    if value is None:
        return None
    return float(Decimal(repr(float(value))).quantize(Decimal("0.01")))


def decision_to_json(decision: Decision) -> dict[str, Any]:
    """The JSON contract of `llmgov decide --format json` (DESIGN.md §4), and more."""
    inputs = decision.inputs
    return {
        "workload": inputs.slug,
        "as_of": decision.request.as_of.isoformat(),
        "recommendation": decision.recommendation,
        "summary": decision.summary,
        "currency": decision.currency,
        "criteria": [
            {
                "key": c.key,
                "favours": c.side,
                "criterion": c.title,
                "holds": c.holds,
                "evidence": c.evidence,
            }
            for c in decision.criteria
        ],
        "monthly_cost": {
            "bedrock": _cents(decision.bedrock_monthly),
            "self_hosted": _cents(decision.self_hosted_infra_monthly),
            "self_hosted_people": _cents(decision.self_hosted_people_monthly),
            "self_hosted_total": _cents(decision.self_hosted_monthly),
            "hybrid": _cents(decision.hybrid_monthly),
            "measured": _cents(inputs.measured_monthly_cost),
        },
        "break_even": decision.break_even_tokens,
        "break_even_distance": decision.distance_to_break_even,
        "volume": {
            "monthly_tokens": inputs.monthly_tokens,
            "input_share": inputs.input_share,
            "peak_to_mean": inputs.peak_to_mean,
            "daily_variation": inputs.daily_variation,
        },
        "fleet": {
            "instance_type": inputs.instance_type,
            "instances": decision.instances,
            "hourly_price": inputs.instance_price,
            "throughput_per_instance": inputs.throughput_per_instance,
            "throughput_source": inputs.throughput_source,
            "utilisation": decision.fleet_utilisation,
        },
        "sensitivity": {
            "volume": [
                {"factor": f, "bedrock": _cents(b), "self_hosted_total": _cents(s)}
                for f, b, s in decision.sensitivity_volume
            ],
            "peak_to_mean": [
                {"peak_to_mean": p, "self_hosted_total": _cents(s), "break_even": be}
                for p, s, be in decision.sensitivity_peak
            ],
        },
        "risks": list(decision.risks),
        "exit_strategy": {"present": decision.has_exit_strategy, "text": inputs.exit_strategy},
        "ownership": decision.ownership,
        "inputs": inputs.to_json(),
        "notes": list(decision.notes),
    }

"""The `/llm-decide` request: its grammar, the what-if keys and their errors.

Each parser returns the value, or raises ValueError saying what to give instead: the accepted
range and an example, quoted after "give" in the error messages. The bounds keep every figure
the decision computes finite (no inf, no NaN, no fleet of 10^300 GPUs).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from llmgov.commands.parsing import ParseError, tokenize
from llmgov.economics.sizing import (
    INSTANCE_TYPES,
    PRECISION_BYTES,
    find_open_model,
    load_open_models,
)
from llmgov.models.registry import is_slug

COMMAND = "/llm-decide"
EXAMPLE = "/llm-decide search-summaries"
WHAT_IF_EXAMPLE = "/llm-decide tokens_per_month=2B model=anthropic.claude-3-haiku-20240307-v1:0"
WINDOW_DAYS = 30
HOURLY_DAYS = 14
HOURS_PER_MONTH = 730.0
DAYS_PER_MONTH = HOURS_PER_MONTH / 24  # 30.42: the month the break-even prices
SPIKY_PEAK_TO_MEAN = 3.0
PREDICTABLE_CV = 0.35  # day-to-day variation above this is not "predictable"
WORTH_OPTIMISING = 0.2  # self-hosting must save at least 20% to beat "speed over optimisation"
NEW_WORKLOAD_DAYS = 90
DEFAULT_OPEN_MODEL = "llama-3.1-8b"
DEFAULT_PEAK_TO_MEAN = 3.0  # for a what-if without hourly data
DEFAULT_TARGET_UTILISATION = 0.6
SELF_HOSTED_RESIDENCY = {"on_prem", "on-prem", "onprem", "air_gapped", "air-gapped", "sovereign"}

RECOMMENDATIONS = ("bedrock", "self_hosted", "hybrid", "fix_ownership_first", "insufficient_data")
PURCHASES = ("on_demand", "savings_plan_1y", "savings_plan_3y", "spot")
BEDROCK_TIERS = ("standard", "batch", "flex", "priority")

HELP = f"""*{COMMAND} [SLUG | key=value ...]*: Bedrock, self-host or hybrid, with the break-even.
• `{EXAMPLE}`: a registered workload, from its last {WINDOW_DAYS} days of data
• `{COMMAND} search-summaries peak_to_mean=5`: the same, with a what-if
• `{WHAT_IF_EXAMPLE}`: a workload that does not exist yet
• `{COMMAND}` alone opens a form
*Keys*: {{keys}}
Volumes take k, M, B suffixes (`2B` = 2,000,000,000 tokens a month); shares 0-1 or `80%`;
yes/no for flags."""


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
    if text not in INSTANCE_TYPES:
        close = difflib.get_close_matches(text, list(INSTANCE_TYPES), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ValueError(f"a GPU instance type we have throughput for{hint}")
    return text


def _open_model(text: str) -> str:
    model = find_open_model(text)
    if model is None:
        names = ", ".join(load_open_models())
        raise ValueError(f"an open model we have sizes for: {names}")
    return model.name


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        lowered = text.strip().lower()
        if lowered not in options:
            raise ValueError("one of " + ", ".join(options))
        return lowered

    return parse


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
        _open_model,
        "the open model self-hosting would run (default: the registry's, else one of "
        "comparable quality to the Bedrock model)",
        "llama-3.1-70b",
    ),
    "precision": Key(
        _choice(tuple(PRECISION_BYTES)),
        "weights precision for self-hosting (bf16 up to 15B, fp8 above)",
        "fp8",
    ),
    "purchase": Key(
        _choice(PURCHASES),
        "how the GPUs are bought: on_demand, savings_plan_1y, savings_plan_3y or spot",
        "savings_plan_1y",
    ),
    "purchase_discount": Key(
        _number(0, 0.95, "a discount from 0 to 95%, like 35%", percent=True),
        "your own discount on the On-Demand GPU price (replaces the purchase's default)",
        "35%",
    ),
    "overhead": Key(
        _number(0, 2, "a share from 0 to 200%, like 10%", percent=True),
        "storage, load balancer and orchestration on top of the GPUs (10%)",
        "10%",
    ),
    "people_fte": Key(
        _number(0, 50, "engineers from 0 to 50, like 0.5"),
        "engineers running the platform (1.5 without ML infrastructure, 0.25 with)",
        "0.5",
    ),
    "latency_itl_ms": Key(
        _milliseconds("milliseconds above 0 and below 600,000, like 50"),
        "inter-token latency target for self-hosted throughput, ms",
        "50",
    ),
    "context_tokens": Key(
        _number(1, 2_000_000, "tokens from 1 to 2,000,000, like 8192"),
        "context length a sequence holds in the KV cache (default: measured per request)",
        "8192",
    ),
    "bedrock_tier": Key(
        _choice(BEDROCK_TIERS),
        "Bedrock way of buying: standard, batch (50% off), flex (50% off) or priority (+75%)",
        "batch",
    ),
    "pt_model_units": Key(
        _whole_number(1, 1000, "a whole number of model units from 1 to 1,000, like 1"),
        "Bedrock Provisioned Throughput model units (custom and fine-tuned models need it)",
        "1",
    ),
    "pt_hourly_per_unit": Key(
        _number(0, 10_000, "an hourly price above 0 and up to 10,000, like 39.60", above_low=True),
        "Bedrock Provisioned Throughput price per model unit and hour",
        "39.60",
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

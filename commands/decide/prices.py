"""Prices for a decision, each with its source: Bedrock tokens (cache tokens apart), the
Bedrock way of buying (tier, Provisioned Throughput) and GPU instance hours.

The database's `prices` table first; `bot/` chains in the catalogues bundled with the
collectors (commands may not import collectors). Inference-profile ids (`us.`, `eu.`,
`global.`, ARNs) resolve to the model behind them before any lookup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from llmgov.models.facts import Price

PROFILE_PREFIX = re.compile(r"^(us|eu|apac|au|jp|ca|us-gov|global|regional)\.")
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class TokenPriceQuote:
    input_per_mtok: float
    output_per_mtok: float
    source: str
    cache_read_per_mtok: float | None = None
    cache_write_per_mtok: float | None = None


@dataclass(frozen=True)
class GpuPriceQuote:
    per_hour: float
    source: str


class PriceSource(Protocol):
    def token(self, model_id: str) -> TokenPriceQuote | None: ...

    def gpu_hour(self, instance_type: str) -> GpuPriceQuote | None: ...


def resolve_model_id(model_id: str) -> tuple[str, str | None]:
    """The foundation model behind an id, and a note when it was resolved.

    `arn:aws:bedrock:...:foundation-model/x` and `us.x` / `eu.x` / `global.x` (cross-region
    inference profiles) -> `x`. An application inference profile cannot be resolved offline:
    it is returned as is (map it in the price override file)."""
    if ":application-inference-profile/" in model_id:
        return model_id, "an application inference profile: its model is unknown offline"
    base = model_id.split(":foundation-model/", 1)[-1]
    base = base.split(":inference-profile/", 1)[-1]
    stripped = PROFILE_PREFIX.sub("", base)
    if stripped != model_id:
        return stripped, f"inference profile `{model_id}` priced as its model `{stripped}`"
    return model_id, None


BEDROCK_ID = re.compile(
    r"(?<![\w.-])((?:(?:us|eu|apac|global)\.)?(?:anthropic|meta|mistral|amazon|openai|cohere|ai21|"
    r"deepseek|qwen|writer)\.[a-z0-9.-]+-v\d+(?::\d+)?|openai\.gpt-oss-\d+b-\d+:\d+)"
)


def bedrock_model_in_text(text: str | None) -> str | None:
    """A Bedrock model id written in free text ("Bedrock meta.llama3-1-8b-instruct-v1:0 is a
    drop-in" -> that id), or None."""
    match = BEDROCK_ID.search(text or "")
    return match.group(1) if match else None


def is_custom_model(model_id: str | None) -> bool:
    """A custom (fine-tuned, imported) or provisioned model: Bedrock serves it only with
    Provisioned Throughput."""
    return bool(model_id) and (":custom-model/" in model_id or ":provisioned-model/" in model_id)


class DatabasePrices:
    """Prices recorded in the `prices` table, falling back to `fallback` when given.

    GPU prices prefer `region` (the workload's), then us-east-1, then any other region."""

    def __init__(
        self, session: Session, fallback: PriceSource | None = None, region: str | None = None
    ):
        self.session = session
        self.fallback = fallback
        self.region = region

    def token(self, model_id: str) -> TokenPriceQuote | None:
        for key in dict.fromkeys((model_id, resolve_model_id(model_id)[0])):
            rows = {
                unit: (amount, source, as_of)
                for unit, amount, source, as_of in self.session.execute(
                    select(Price.unit, Price.amount, Price.source, Price.as_of).where(
                        Price.kind == "token", Price.key == key
                    )
                )
            }
            if "per_mtok_input" in rows and "per_mtok_output" in rows:
                _amount, source, as_of = rows["per_mtok_input"]

                cache_read, cache_write = (
                    float(rows[name][0]) if name in rows else None
                    for name in ("per_mtok_cache_read", "per_mtok_cache_write")
                )
                return TokenPriceQuote(
                    float(rows["per_mtok_input"][0]),
                    float(rows["per_mtok_output"][0]),
                    f"{source}, {as_of}",
                    cache_read,
                    cache_write,
                )
        if self.fallback is None:
            return None
        return self.fallback.token(model_id) or self.fallback.token(resolve_model_id(model_id)[0])

    def gpu_hours(self, instance_types: list[str]) -> dict[str, GpuPriceQuote]:
        """Hourly prices of many instance types in one query (same preference as
        `gpu_hour`), the fallback asked only for those the table lacks."""
        preferred = [r for r in (self.region, DEFAULT_REGION) if r]
        rank = {r: i for i, r in enumerate(preferred)}
        rows = self.session.execute(
            select(Price.key, Price.amount, Price.source, Price.as_of, Price.region).where(
                Price.kind == "gpu_hour", Price.key.in_(instance_types)
            )
        ).all()
        best: dict[str, tuple] = {}
        for key, amount, source, as_of, region in rows:
            order = (rank.get(region, len(preferred)), region or "")
            if key not in best or order < best[key][0]:
                best[key] = (order, GpuPriceQuote(float(amount), f"{source}, {as_of}, {region}"))
        quotes = {key: quote for key, (_order, quote) in best.items()}
        if self.fallback is not None:
            for name in instance_types:
                if name not in quotes:
                    found = self.fallback.gpu_hour(name)
                    if found is not None:
                        quotes[name] = found
        return quotes

    def gpu_hour(self, instance_type: str) -> GpuPriceQuote | None:
        preferred = [r for r in (self.region, DEFAULT_REGION) if r]
        order = case(
            *((Price.region == r, i) for i, r in enumerate(preferred)), else_=len(preferred)
        )
        row = self.session.execute(
            select(Price.amount, Price.source, Price.as_of, Price.region)
            .where(Price.kind == "gpu_hour", Price.key == instance_type)
            .order_by(order, Price.region)
            .limit(1)
        ).first()
        if row is not None:
            return GpuPriceQuote(float(row[0]), f"{row[1]}, {row[2]}, {row[3]}")
        return self.fallback.gpu_hour(instance_type) if self.fallback else None


__all__ = [
    "DatabasePrices",
    "GpuPriceQuote",
    "PriceSource",
    "TokenPriceQuote",
    "bedrock_model_in_text",
    "is_custom_model",
    "resolve_model_id",
]

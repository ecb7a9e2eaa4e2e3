"""Prices, each with its source and date: Bedrock token prices and GPU instance-hour prices.

Token prices come from the `genai-prices` package (one price set per model, not per region),
overridden by a local YAML file for what it lacks or gets wrong (application inference
profiles, negotiated rates, models it cannot resolve). GPU prices come from the bundled,
dated table `collectors/data/gpu_prices.csv`, optionally refreshed from the AWS Price List
API (us-east-1 endpoint). Prices actually used are recorded in the `prices` table.

Bedrock's CloudWatch `InputTokenCount` excludes cache tokens (aws.md §2.2), so an estimate
prices input, cache-read, cache-write and output tokens separately and adds them.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.orm import Session

from llmgov.collectors.paging import checked_pages
from llmgov.collectors.upserts import dialect_insert
from llmgov.models.errors import BadInput
from llmgov.models.facts import Price

DATA_DIR = Path(__file__).parent / "data"
GPU_PRICE_TABLE = DATA_DIR / "gpu_prices.csv"
OVERRIDE_ENV = "LLMGOV_PRICE_OVERRIDES"
MILLION = Decimal(1_000_000)
# cross-region and geographic inference-profile prefixes of Bedrock model ids
GEO_PREFIXES = ("us.", "eu.", "apac.", "au.", "jp.", "ca.", "us-gov.", "global.", "regional.")


@dataclass(frozen=True)
class TokenPrice:
    """USD (or `currency`) per million tokens of each kind for one Bedrock model id."""

    model_id: str
    input_mtok: Decimal
    output_mtok: Decimal
    cache_read_mtok: Decimal | None
    cache_write_mtok: Decimal | None
    currency: str
    source: str
    as_of: date
    resolved_as: str  # the price-table entry the id resolved to

    def estimate(
        self,
        input_tokens: float,
        output_tokens: float,
        cache_read_tokens: float = 0.0,
        cache_write_tokens: float = 0.0,
    ) -> Decimal:
        """Token-based cost; cache tokens without their own price are priced as input."""
        cache_read = self.cache_read_mtok if self.cache_read_mtok is not None else self.input_mtok
        cache_write = (
            self.cache_write_mtok if self.cache_write_mtok is not None else self.input_mtok
        )
        total = (
            _dec(input_tokens) * self.input_mtok
            + _dec(output_tokens) * self.output_mtok
            + _dec(cache_read_tokens) * cache_read
            + _dec(cache_write_tokens) * cache_write
        )
        return (total / MILLION).quantize(Decimal("0.00000001"))

    def rows(self) -> list[dict[str, Any]]:
        units = {
            "per_mtok_input": self.input_mtok,
            "per_mtok_output": self.output_mtok,
            "per_mtok_cache_read": self.cache_read_mtok,
            "per_mtok_cache_write": self.cache_write_mtok,
        }
        return [
            {
                "kind": "token",
                "key": self.model_id,
                "region": "*",
                "unit": unit,
                "amount": amount,
                "currency": self.currency,
                "source": self.source[:64],  # Price.source is String(64)
                "as_of": self.as_of,
            }
            for unit, amount in units.items()
            if amount is not None
        ]


@dataclass(frozen=True)
class GpuPrice:
    """One instance type's GPU count and On-Demand hourly price in a region."""

    instance_type: str
    region: str
    gpu_count: int
    gpu_model: str
    per_hour: Decimal | None
    currency: str
    source: str
    as_of: date

    def row(self) -> dict[str, Any]:
        return {
            "kind": "gpu_hour",
            "key": self.instance_type,
            "region": self.region,
            "unit": "per_hour",
            "amount": self.per_hour,
            "currency": self.currency,
            "source": self.source,
            "as_of": self.as_of,
        }


def _dec(value: float | int | Decimal) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def base_model_id(model_id: str) -> str:
    """`arn:...:foundation-model/x` → `x`; `us.x` → `x` (for override lookups)."""
    if ":foundation-model/" in model_id:
        model_id = model_id.split(":foundation-model/", 1)[1]
    for prefix in GEO_PREFIXES:
        if model_id.startswith(prefix):
            return model_id[len(prefix) :]
    return model_id


class PriceBook:
    """Token prices for one run: overrides first, then genai-prices; misses are remembered."""

    def __init__(self, overrides: dict[str, TokenPrice] | None = None, today: date | None = None):
        self.today = today or datetime.now(UTC).date()
        self.overrides = overrides or {}
        self.used: dict[str, TokenPrice] = {}
        self.missing: set[str] = set()
        self._cache: dict[str, TokenPrice | None] = {}

    @classmethod
    def load(cls, override_path: str | Path | None = None, today: date | None = None) -> PriceBook:
        """The price book with the override file (argument, else $LLMGOV_PRICE_OVERRIDES)."""
        path = override_path or os.environ.get(OVERRIDE_ENV)
        overrides = load_overrides(Path(path)) if path else {}
        return cls(overrides, today)

    def token_price(self, model_id: str) -> TokenPrice | None:
        if model_id not in self._cache:
            price = self._override(model_id) or self._genai_price(model_id)
            self._cache[model_id] = price
            if price is None:
                self.missing.add(model_id)
            else:
                self.used[model_id] = price
        return self._cache[model_id]

    def estimate(
        self,
        model_id: str,
        input_tokens: float,
        output_tokens: float,
        cache_read_tokens: float = 0.0,
        cache_write_tokens: float = 0.0,
    ) -> Decimal | None:
        price = self.token_price(model_id)
        if price is None:
            return None
        return price.estimate(input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)

    def _override(self, model_id: str) -> TokenPrice | None:
        for key in (model_id, base_model_id(model_id)):
            if key in self.overrides:
                found = self.overrides[key]
                return replace(found, model_id=model_id)
        # an application inference profile ARN may be given by its id, and vice versa
        for key, found in self.overrides.items():
            if "/" in key and key.rsplit("/", 1)[1] == model_id:
                return replace(found, model_id=model_id)
        return None

    def _genai_price(self, model_id: str) -> TokenPrice | None:
        from genai_prices.data_snapshot import get_snapshot

        if ":application-inference-profile/" in model_id:
            return None  # genai-prices cannot resolve these; map them in the override file
        lookup = model_id.split(":foundation-model/", 1)[-1]
        try:
            _provider, model = get_snapshot().find_provider_model(lookup, None, "aws", None)
            prices = model.get_prices(datetime.combine(self.today, datetime.min.time(), UTC))
        except LookupError:
            return None
        input_mtok = _base_price(getattr(prices, "input_mtok", None))
        output_mtok = _base_price(getattr(prices, "output_mtok", None))
        if input_mtok is None or output_mtok is None:
            return None
        return TokenPrice(
            model_id=model_id,
            input_mtok=input_mtok,
            output_mtok=output_mtok,
            cache_read_mtok=_base_price(getattr(prices, "cache_read_mtok", None)),
            cache_write_mtok=_base_price(getattr(prices, "cache_write_mtok", None)),
            currency="USD",
            source=f"genai-prices {_genai_version()}",
            as_of=self.today,
            resolved_as=model.id,
        )

    def record(self, session: Session) -> int:
        """Upsert every price this run used into the `prices` table."""
        rows = [row for price in self.used.values() for row in price.rows()]
        upsert_prices(session, rows)
        return len(rows)


def _base_price(value: Any) -> Decimal | None:
    """A flat price, or the base tier of a tiered one (Bedrock hourly sums mix request sizes)."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    base = getattr(value, "base", None)
    return base if isinstance(base, Decimal) else None


@cache
def _genai_version() -> str:
    try:
        return metadata.version("genai-prices")
    except metadata.PackageNotFoundError:  # pragma: no cover - it is a dependency
        return "unknown"


def load_overrides(path: Path) -> dict[str, TokenPrice]:
    """Read the override file; every mistake names the file, the entry and the field.

    ```yaml
    currency: USD            # default for every entry
    as_of: 2026-11-01        # the date these prices were agreed or read
    bedrock:                 # USD per million tokens
      anthropic.claude-3-haiku-20240307-v1:0: {input: 0.25, output: 1.25, cache_read: 0.03}
      arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/a1b2c3:
        same_as: anthropic.claude-3-haiku-20240307-v1:0
    ```
    """
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise BadInput(
            f"price override file {path} does not exist; fix {OVERRIDE_ENV} or the path"
        ) from None
    except yaml.YAMLError as error:
        raise BadInput(f"price override file {path} is not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise BadInput(f"price override file {path} must be a mapping with a `bedrock:` section")
    currency = str(document.get("currency", "USD"))
    as_of = _parse_as_of(document.get("as_of"), path)
    entries = document.get("bedrock") or {}
    if not isinstance(entries, dict):
        raise BadInput(f"{path}: `bedrock` must map model ids to prices")
    source = f"override:{path.name}"
    result: dict[str, TokenPrice] = {}
    aliases: dict[str, str] = {}
    for model_id, entry in entries.items():
        where = f"{path}: bedrock.{model_id}"
        if not isinstance(entry, dict):
            raise BadInput(f"{where} must be a mapping like {{input: 0.25, output: 1.25}}")
        unknown = sorted(
            set(entry) - {"input", "output", "cache_read", "cache_write", "same_as", "currency"}
        )
        if unknown:
            raise BadInput(f"{where}: unknown field(s) {', '.join(unknown)}")
        if "same_as" in entry:
            aliases[str(model_id)] = str(entry["same_as"])
            continue
        result[str(model_id)] = TokenPrice(
            model_id=str(model_id),
            input_mtok=_price_field(entry, "input", where, required=True),  # type: ignore[arg-type]
            output_mtok=_price_field(entry, "output", where, required=True),  # type: ignore[arg-type]
            cache_read_mtok=_price_field(entry, "cache_read", where),
            cache_write_mtok=_price_field(entry, "cache_write", where),
            currency=str(entry.get("currency", currency)),
            source=source,
            as_of=as_of,
            resolved_as=str(model_id),
        )
    book = PriceBook(result)
    for alias, target in aliases.items():
        price = book.token_price(target)
        if price is None:
            raise BadInput(
                f"{path}: bedrock.{alias}.same_as names {target!r}, which is neither in the file "
                "nor known to genai-prices; give its prices instead"
            )
        # the numbers are genai-prices' (or the target entry's); the mapping is the file's
        result[alias] = replace(
            price, model_id=alias, source=f"{price.source} via {path.name}"[:64]
        )
    return result


def _parse_as_of(value: Any, path: Path) -> date:
    if value is None:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC).date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise BadInput(f"{path}: as_of {value!r} is not a date (YYYY-MM-DD)") from None


def _price_field(entry: dict, name: str, where: str, *, required: bool = False) -> Decimal | None:
    if name not in entry or entry[name] is None:
        if required:
            raise BadInput(f"{where}: `{name}` (USD per million tokens) is required")
        return None
    try:
        value = Decimal(str(entry[name]))
    except InvalidOperation:
        raise BadInput(f"{where}.{name}: {entry[name]!r} is not a number") from None
    if value < 0:
        raise BadInput(f"{where}.{name}: a price cannot be negative ({value})")
    return value


def upsert_prices(
    session: Session, rows: Iterable[dict[str, Any]], *, only_if_newer: bool = False
) -> None:
    """Insert or replace prices on (kind, key, region, unit).

    `only_if_newer`: keep a stored price unless this one is dated later (the bundled table
    must not overwrite a fresher Price List refresh on every run).
    """
    rows = [row for row in rows if row["amount"] is not None]
    if not rows:
        return
    statement = dialect_insert(session, Price.__table__)
    statement = statement.on_conflict_do_update(
        index_elements=["kind", "key", "region", "unit"],
        set_={name: statement.excluded[name] for name in ("amount", "currency", "source", "as_of")},
        where=(Price.__table__.c.as_of < statement.excluded.as_of) if only_if_newer else None,
    )
    session.execute(statement, rows)


# --- GPU instance prices -------------------------------------------------------------------


@cache
def gpu_table(path: Path = GPU_PRICE_TABLE) -> dict[tuple[str, str], GpuPrice]:
    """The bundled table keyed by (instance type, region)."""
    table: dict[tuple[str, str], GpuPrice] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        lines = (line for line in handle if not line.startswith("#"))
        for row in csv.DictReader(lines):
            price = row["price_per_hour"].strip()
            table[(row["instance_type"], row["region"])] = GpuPrice(
                instance_type=row["instance_type"],
                region=row["region"],
                gpu_count=int(row["gpu_count"]),
                gpu_model=row["gpu_model"],
                per_hour=Decimal(price) if price else None,
                currency=row["currency"],
                source=f"bundled:{path.name} ({row['source']})",
                as_of=date.fromisoformat(row["as_of"]),
            )
    return table


def gpu_count(instance_type: str) -> int | None:
    """GPUs per instance of this type (region-independent), None when unknown."""
    for (name, _region), price in gpu_table().items():
        if name == instance_type:
            return price.gpu_count
    return None


def gpu_hourly_price(instance_type: str, region: str = "us-east-1") -> GpuPrice | None:
    """The region's price, else the us-east-1 one (the bundled table is us-east-1 only)."""
    table = gpu_table()
    return table.get((instance_type, region)) or table.get((instance_type, "us-east-1"))


def refresh_gpu_prices(
    pricing_client: Any, instance_types: Iterable[str], region: str, today: date
) -> list[GpuPrice]:
    """On-Demand Linux prices from the AWS Price List API (`pricing` client in us-east-1)."""
    refreshed: list[GpuPrice] = []
    for instance_type in sorted(set(instance_types)):
        sagemaker = instance_type.startswith("ml.")
        service = "AmazonSageMaker" if sagemaker else "AmazonEC2"
        filters = [
            {"Type": "TERM_MATCH", "Field": "instanceType", "Value": instance_type},
            {"Type": "TERM_MATCH", "Field": "regionCode", "Value": region},
        ]
        if not sagemaker:
            filters += [
                {"Type": "TERM_MATCH", "Field": "operatingSystem", "Value": "Linux"},
                {"Type": "TERM_MATCH", "Field": "tenancy", "Value": "Shared"},
                {"Type": "TERM_MATCH", "Field": "preInstalledSw", "Value": "NA"},
                {"Type": "TERM_MATCH", "Field": "capacitystatus", "Value": "Used"},
            ]
        paginator = pricing_client.get_paginator("get_products")
        amount: Decimal | None = None
        pages = paginator.paginate(ServiceCode=service, Filters=filters, FormatVersion="aws_v1")
        for page in checked_pages(pages, token="NextToken", api="Price List GetProducts"):
            for item in page.get("PriceList", []):
                amount = amount or _on_demand_hourly(
                    json.loads(item) if isinstance(item, str) else item
                )
        known = gpu_hourly_price(instance_type, region)
        count = known.gpu_count if known else None
        if amount is None or count is None:
            continue
        refreshed.append(
            GpuPrice(
                instance_type=instance_type,
                region=region,
                gpu_count=count,
                gpu_model=known.gpu_model if known else "",
                per_hour=amount,
                currency="USD",
                source="aws-price-list-api",
                as_of=today,
            )
        )
    return refreshed


def _on_demand_hourly(product: dict[str, Any]) -> Decimal | None:
    for term in product.get("terms", {}).get("OnDemand", {}).values():
        for dimension in term.get("priceDimensions", {}).values():
            usd = dimension.get("pricePerUnit", {}).get("USD")
            if (
                usd is not None
                and dimension.get("unit", "").lower().startswith("hr")
                and Decimal(usd) > 0
            ):
                return Decimal(usd)
    return None


def record_gpu_prices(
    session: Session, prices: Iterable[GpuPrice], *, only_if_newer: bool = False
) -> int:
    rows = [price.row() for price in prices if price.per_hour is not None]
    upsert_prices(session, rows, only_if_newer=only_if_newer)
    return len(rows)

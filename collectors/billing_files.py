"""Billing exports (FOCUS, CUR 2.0; CSV, gzip CSV or Parquet) into daily cost facts.

Streaming in bounded memory: rows are read one at a time (Parquet in record batches),
normalised, summed per (series, day) in a bounded in-memory buffer, and flushed into a
temporary staging table that adds partial sums. Only when the whole input was read without
a bad row are the staged sums merged into `cost_facts` (upsert on the natural key) and
attributed, in the same transaction: a file imports whole or not at all.

Every row's cost is kept, LLM or not (`is_llm` marks Bedrock/LLM rows), so the totals per
service reconcile with the bill. Bedrock rows are recognised by product code, by service
name (Marketplace models bill as "... (Amazon Bedrock Edition)") or by model publisher.

A billing period split into several files (AWS writes `part-00000`, `part-00001`, ...)
must be imported in one command: a later import of one part replaces the days and series
it contains, so parts imported one by one would replace each other's partial sums.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from operator import itemgetter
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    cast,
    func,
    literal,
    literal_column,
    select,
    true,
)
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import JSON, Boolean, Numeric

from llmgov.collectors.attribution import AttributionSummary, attribute_facts
from llmgov.collectors.upserts import PRESERVED_ON_CONFLICT, dialect_insert, series_key
from llmgov.models.base import transaction, utcnow
from llmgov.models.errors import BadInput
from llmgov.models.facts import CostFact
from llmgov.models.ledger import charge_kind, check_amount, check_currency, is_correction, settle
from llmgov.models.planner_stats import refresh_after_writing

FORMATS = ("focus", "cur2")
NULLS = frozenset({"", "NULL", "null", "None", "\\N"})
MAX_REPORTED_ERRORS = 20
PENDING_LIMIT = 20_000  # (series, day) sums held in memory before a flush to the stage
FLUSH_BATCH = 5_000  # stage rows per executemany
KEY_CACHE_LIMIT = 100_000  # distinct series described and remembered before the cache restarts
NANO = Decimal("0.000000001")

FIRST_PARTY_CODES = frozenset(
    {"amazonbedrock", "amazonbedrockservice", "amazonbedrockfoundationmodels"}
)
# Marketplace publishers of foundation models offered through Bedrock
LLM_PUBLISHERS = (
    "anthropic",
    "cohere",
    "ai21",
    "mistral",
    "meta",
    "stability ai",
    "writer",
    "deepseek",
    "openai",
    "luma",
    "twelvelabs",
    "moonshot",
    "qwen",
)
SERVICE_MARKERS = ("bedrock", "openai")


class RowError(ValueError):
    """One row could not be read; the message says which field and why."""


def colkey(name: str) -> str:
    """Column names compared loosely: `BilledCost`, `billedcost`, `billed_cost` are one name."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


# --- normalised line -------------------------------------------------------------------------


@dataclass(slots=True)
class BillingLine:
    day: date
    cost: Decimal
    currency: str
    quantity: float
    account: str | None
    region: str | None
    service: str | None
    usage_type: str | None
    resource_id: str | None
    product_code: str | None
    publisher: str | None
    charge_category: str | None
    charge_class: str | None  # FOCUS ChargeClass (`Correction`)
    billing_period: date | None  # the billing period's start, when the export says
    iam_principal: str | None
    tags: dict[str, str]
    tags_key: str  # the tags as written in the row: a cheap, exact grouping key


def is_llm_line(product_code: str | None, service: str | None, publisher: str | None) -> bool:
    """Bedrock or other LLM spend: by product code, service name, or model publisher."""
    if product_code and product_code.lower() in FIRST_PARTY_CODES:
        return True
    if service and any(marker in service.lower() for marker in SERVICE_MARKERS):
        return True
    if publisher:
        name = publisher.lower()
        return any(
            name == p or name.startswith(p + " ") or name.startswith(p + ",")
            for p in LLM_PUBLISHERS
        )
    return False


def line_dimensions(line: BillingLine) -> dict[str, Any]:
    dims: dict[str, Any] = {
        "account": line.account,
        "region": line.region,
        "service": line.service,
        "usage_type": line.usage_type,
        "resource_id": line.resource_id,
        "product_code": line.product_code,
        "publisher": line.publisher,
        "charge_category": line.charge_category,
        "charge_class": line.charge_class,
        "billing_period": line.billing_period.isoformat() if line.billing_period else None,
        "iam_principal": line.iam_principal,
    }
    resource = line.resource_id or ""
    if ":application-inference-profile/" in resource:
        dims["inference_profile"] = resource
    instance = re.search(r"(?:^|instance/)(i-[0-9a-f]{8,17})$", resource)
    if instance:
        dims["instance"] = instance.group(1)
    endpoint = re.search(r":sagemaker:[^:]*:\d*:endpoint/(.+)$", resource)
    if endpoint:
        dims["endpoint"] = endpoint.group(1)
    if line.tags:
        dims["tags"] = line.tags
    return {key: value for key, value in dims.items() if value not in (None, "", {})}


def _fit(value: str | None, size: int) -> str | None:
    """A column value, or None when it is longer than the column (kept in `dimensions`)."""
    return value if value is None or len(value) <= size else None


# --- value parsing ---------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    """Text with the export's spellings of "missing" (`NULL`, empty, ...) as None."""
    if value.__class__ is str:
        text = (
            value if not value or not (value[0].isspace() or value[-1].isspace()) else value.strip()
        )
    elif value is None:
        return None
    else:
        text = str(value).strip()
    return None if text in NULLS else text


def _decimal(value: Any, name: str) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    text = _text(value)
    if text is None:
        raise RowError(f"{name} is empty")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise RowError(f"{name} {text[:40]!r} is not a number") from None
    if not number.is_finite():
        raise RowError(f"{name} {text[:40]!r} is not a finite number")
    return number


def _amount(value: Any) -> Decimal:
    """A row's cost: a finite number within the ledger's range (else the row is refused)."""
    number = _decimal(value, "the cost")
    try:
        check_amount(number)
    except ValueError as error:
        raise RowError(str(error)) from None
    return number


def _float(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = _text(value)
    if text is None:
        return 0.0
    try:
        return float(text)
    except ValueError:
        raise RowError(f"quantity {text[:40]!r} is not a number") from None


_DAY_CACHE: dict[str, date] = {}


def _day(value: Any, name: str) -> date:
    """The UTC date of a timestamp (ISO text with or without zone, or a datetime)."""
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).date()
    if isinstance(value, date):
        return value
    text = _text(value)
    if text is None:
        raise RowError(f"{name} is empty")
    cached = _DAY_CACHE.get(text)
    if cached is not None:
        return cached
    try:
        tail = text[10:]
        if not tail or re.fullmatch(r"[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]00:?00)?", tail):
            day = date.fromisoformat(text[:10])  # UTC or naive (exports are UTC)
        else:
            day = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).date()
    except ValueError:
        raise RowError(f"{name} {text[:40]!r} is not a date or timestamp") from None
    if len(_DAY_CACHE) > 100_000:
        _DAY_CACHE.clear()
    _DAY_CACHE[text] = day
    return day


def _mapping(value: Any, name: str) -> dict[str, str]:
    """A tag/product map: JSON text, a dict, or Parquet's list of (key, value) pairs."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        pairs = value.items()
    elif isinstance(value, list):
        pairs = [
            tuple(item) if not isinstance(item, Mapping) else (item.get("key"), item.get("value"))
            for item in value
        ]
    else:
        text = _text(value)
        if text is None or text == "{}":
            return {}
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as error:
            raise RowError(
                f"{name} is not valid JSON ({error.msg} at character {error.pos})"
            ) from None
        if not isinstance(parsed, dict):
            raise RowError(f"{name} must be a JSON object of key/value pairs")
        pairs = parsed.items()
    return {str(k).strip(): ("" if v is None else str(v)) for k, v in pairs if str(k).strip()}


# --- formats -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    name: str  # our name
    columns: tuple[str, ...]  # accepted column names, compared with colkey()
    required: bool = False


FOCUS_FIELDS = (
    Field("cost", ("BilledCost",), True),
    Field("currency", ("BillingCurrency",), True),
    Field("start", ("ChargePeriodStart",), True),
    Field("service", ("ServiceName",), True),
    Field("account", ("SubAccountId", "BillingAccountId")),
    Field("region", ("RegionId", "Region")),
    Field("resource", ("ResourceId",)),
    Field("publisher", ("PublisherName",)),
    Field("product_code", ("x_ServiceCode",)),
    Field("usage_type", ("x_UsageType",)),
    Field("quantity", ("ConsumedQuantity", "PricingQuantity")),
    Field("charge_category", ("ChargeCategory",)),
    Field("charge_class", ("ChargeClass",)),
    Field("billing_period", ("BillingPeriodStart",)),
    Field("iam_principal", ("x_IamPrincipal", "x_LineItemIamPrincipal")),
    Field("tags", ("Tags",)),
)
CUR2_FIELDS = (
    Field("cost", ("line_item_unblended_cost",), True),
    Field("currency", ("line_item_currency_code",), True),
    Field("start", ("line_item_usage_start_date",), True),
    Field("product_code", ("line_item_product_code",), True),
    Field("usage_type", ("line_item_usage_type",)),
    Field("account", ("line_item_usage_account_id",)),
    Field("region", ("product_region_code", "product_region")),
    Field("resource", ("line_item_resource_id",)),
    Field("quantity", ("line_item_usage_amount",)),
    Field("charge_category", ("line_item_line_item_type",)),
    Field("billing_period", ("bill_billing_period_start_date",)),
    Field("publisher", ("line_item_legal_entity",)),
    Field("iam_principal", ("line_item_iam_principal",)),
    Field("service_name", ("product_product_name", "product_servicename")),
    Field("service_code", ("product_servicecode",)),
    Field("product", ("product",)),
    Field("tags", ("resource_tags",)),
)
FIELDS = {"focus": FOCUS_FIELDS, "cur2": CUR2_FIELDS}
LABELS = {"focus": "FOCUS", "cur2": "CUR 2.0"}
TAG_COLUMN = re.compile(
    r"^(?:resource_tags_user_|resourcetags/user:|resource_tags/user:)(.+)$", re.IGNORECASE
)


@dataclass
class Layout:
    """Where each field sits in a header, and the per-tag columns of legacy-style exports."""

    fmt: str
    index: dict[str, int]
    tag_columns: list[tuple[int, str]]


def detect_format(header: Sequence[str]) -> str | None:
    keys = {colkey(name) for name in header}
    for fmt in FORMATS:
        if all(
            colkey(column) in keys for f in FIELDS[fmt] if f.required for column in f.columns[:1]
        ):
            return fmt
    return None


def make_layout(header: Sequence[str], fmt: str | None, source: str) -> Layout:
    """Resolve the columns; missing required ones or a foreign header are a clear error."""
    positions: dict[str, int] = {}
    for index, name in enumerate(header):
        key = colkey(name)
        if key in positions:
            raise BadInput(f"{source}: column {name!r} appears twice in the header; fix the export")
        positions[key] = index
    detected = detect_format(header)
    fmt = fmt or detected
    if fmt is None:
        shown = ", ".join(header[:8]) + (", ..." if len(header) > 8 else "")
        raise BadInput(
            f"{source}: none of the known billing formats matches its columns ({shown}). "
            "Expected a FOCUS export (BilledCost, BillingCurrency, ChargePeriodStart, ServiceName, ...) "
            "or a CUR 2.0 export (line_item_unblended_cost, line_item_currency_code, ...)."
        )
    index: dict[str, int] = {}
    missing = []
    for f in FIELDS[fmt]:
        found = next((positions[colkey(c)] for c in f.columns if colkey(c) in positions), None)
        if found is not None:
            index[f.name] = found
        elif f.required:
            missing.append(f.columns[0])
    if missing:
        hint = (
            f" It looks like {LABELS[detected]}: use --format {detected}."
            if detected and detected != fmt
            else ""
        )
        raise BadInput(
            f"{source}: not a {LABELS[fmt]} export: missing required column(s) {', '.join(missing)}.{hint}"
        )
    tag_columns = [
        (i, m.group(1)) for i, name in enumerate(header) if (m := TAG_COLUMN.match(name))
    ]
    return Layout(fmt, index, tag_columns)


# the order in which LineParser picks a row's fields (a missing column reads as None)
PICKED = (
    "currency", "tags", "product", "start", "cost", "quantity", "account", "region", "service",
    "service_name", "service_code", "product_code", "usage_type", "resource", "publisher",
    "charge_category", "iam_principal", "charge_class", "billing_period",
)  # fmt: skip


class LineParser:
    """One layout's row → BillingLine. The hot path of an import: one itemgetter per row,
    and caches for the repetitive text (tag and product maps, currencies)."""

    def __init__(self, layout: Layout, width: int) -> None:
        self.layout = layout
        self.width = width
        self._pick = itemgetter(*(layout.index.get(name, width) for name in PICKED))
        self._maps: dict[str, dict[str, str]] = {}
        self._currencies: set[str] = set()

    def _map(self, raw: Any, name: str) -> dict[str, str]:
        if not isinstance(raw, str):
            return _mapping(raw, name)
        cached = self._maps.get(raw)
        if cached is None:
            cached = _mapping(raw, name)
            if len(self._maps) > 50_000:
                self._maps.clear()
            self._maps[raw] = cached
        return cached

    def parse(self, values: Sequence[Any]) -> BillingLine:
        row = values if isinstance(values, list) else list(values)
        row.append(None)  # position `width`: every missing column
        (
            currency, tags_raw, product_raw, start, cost, quantity, account, region, service,
            service_name, service_code, product_code, usage_type, resource, publisher,
            charge_category, iam_principal, charge_class, billing_period,
        ) = self._pick(row)  # fmt: skip
        currency = _text(currency)
        if currency not in self._currencies:
            if currency is None:
                raise RowError("the currency column is empty")
            if not re.fullmatch(r"[A-Za-z]{3}", currency):
                raise RowError(f"currency {currency[:20]!r} is not a 3-letter ISO code")
            self._currencies.add(currency)
        tags = self._map(tags_raw, "tags") if tags_raw is not None else {}
        tags_key = tags_raw if isinstance(tags_raw, str) else repr(sorted(tags.items()))
        if self.layout.tag_columns:
            tags = dict(tags)
            for position, key in self.layout.tag_columns:
                value = _text(row[position])
                if value is not None:
                    tags[key] = value
                    tags_key += f"|{key}={value}"
        product_code = _text(product_code)
        if self.layout.fmt == "focus":
            service = _text(service)
        else:
            product = self._map(product_raw, "product") if product_raw is not None else {}
            service = (
                _text(service_name)
                or product.get("product_name")
                or product.get("servicename")
                or _text(service_code)
                or product_code
            )
        period = _text(billing_period)
        return BillingLine(
            day=_day(start, "the charge start"),
            cost=_amount(cost),
            currency=currency.upper(),  # type: ignore[union-attr]
            quantity=_float(quantity),
            account=_text(account),
            region=_text(region),
            service=service,
            usage_type=_text(usage_type),
            resource_id=_text(resource),
            product_code=product_code,
            publisher=_text(publisher),
            charge_category=_text(charge_category),
            charge_class=_text(charge_class),
            billing_period=None if period is None else _day(period, "the billing period start"),
            iam_principal=_text(iam_principal),
            tags=tags,
            tags_key=tags_key,
        )


def _correction_of(line: BillingLine) -> str | None:
    """What makes a row a correction of an earlier charge (None: an ordinary charge): FOCUS
    ChargeClass `Correction`, or a charge billed in a later period than its usage day."""
    late = line.billing_period is not None and (
        line.billing_period.year,
        line.billing_period.month,
    ) > (
        line.day.year,
        line.day.month,
    )
    if not (is_correction(line.charge_class) or late):
        return None
    period = line.billing_period.isoformat() if line.billing_period else ""
    return f"correction:{period}"


# --- readers ------------------------------------------------------------------------------------

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
PARQUET_BATCH = 20_000


def _kind_of(path: Path) -> str:
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic.startswith(GZIP_MAGIC):
        return "gzip"
    if magic == PARQUET_MAGIC:
        return "parquet"
    return "csv"


@dataclass
class Source:
    """A readable input: its header, and its rows as (row number, values) in header order."""

    name: str
    header: list[str]
    rows: Iterator[tuple[int, Sequence[Any]]]
    bytes_total: int = 0


def open_source(path: Path) -> Source:
    if not path.exists():
        raise BadInput(f"{path} does not exist")
    if path.is_dir():
        raise BadInput(
            f"{path} is a directory; pass its files (all parts of a billing period together)"
        )
    kind = _kind_of(path)
    size = path.stat().st_size
    if size == 0:
        raise BadInput(f"{path} is empty")
    if kind == "parquet":
        return _open_parquet(path, size)
    return _open_csv(path, kind == "gzip", size)


def _open_csv(path: Path, gzipped: bool, size: int) -> Source:
    # closed by the row generator when reading ends, or below if the header cannot be read
    raw = gzip.open(path, "rb") if gzipped else path.open("rb")  # noqa: SIM115
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")  # type: ignore[arg-type]
    reader = csv.reader(text, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        text.close()
        raise BadInput(f"{path} has no header row") from None
    except UnicodeDecodeError as error:
        text.close()
        raise BadInput(
            f"{path} is not UTF-8 CSV text ({error.reason} at byte {error.start}); export it as "
            "CSV, gzip-compressed CSV or Parquet"
        ) from None
    except (OSError, EOFError, csv.Error) as error:
        text.close()
        raise BadInput(f"{path} cannot be read as CSV: {error}") from None
    header = [name.strip() for name in header]

    def rows() -> Iterator[tuple[int, Sequence[Any]]]:
        number = 0
        try:
            for number, values in enumerate(reader, start=1):
                yield number, values
        except csv.Error as error:
            raise _Unreadable(number + 1, f"malformed CSV ({error})") from None
        except UnicodeDecodeError as error:
            raise _Unreadable(
                number + 1, f"not UTF-8 text ({error.reason} at byte {error.start})"
            ) from None
        except (EOFError, OSError, gzip.BadGzipFile) as error:
            raise _Unreadable(
                number + 1, f"the compressed file is truncated or corrupt ({error})"
            ) from None
        finally:
            text.close()

    return Source(str(path), header, rows(), size)


def _open_parquet(path: Path, size: int) -> Source:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
        raise BadInput(
            f"{path} is not a readable Parquet file (truncated or corrupt?): {error}"
        ) from None
    header = list(parquet.schema_arrow.names)

    def rows() -> Iterator[tuple[int, Sequence[Any]]]:
        number = 0
        try:
            for batch in parquet.iter_batches(batch_size=PARQUET_BATCH):
                columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
                for values in zip(*columns, strict=True):
                    number += 1
                    yield number, values
        except (pa.ArrowException, OSError) as error:
            raise _Unreadable(number + 1, f"the Parquet data is corrupt ({error})") from None

    return Source(str(path), header, rows(), size)


class _Unreadable(Exception):
    """The rest of the file cannot be read from this row on."""

    def __init__(self, row: int, reason: str) -> None:
        super().__init__(reason)
        self.row = row
        self.reason = reason


# --- staging ------------------------------------------------------------------------------------


def _stage_table(metadata: MetaData) -> Table:
    return Table(
        "llmgov_billing_stage",
        metadata,
        Column("series_key", String(500), nullable=False),
        Column("day", Date, nullable=False),
        Column("cost_nano", BigInteger, nullable=False),  # exact partial sums, 1e-9 units
        Column("quantity", Float, nullable=False),
        Column("is_llm", Integer, nullable=False),
        Column("charge_kind", String(16), nullable=False),
        Column("account", String(32)),
        Column("region", String(32)),
        Column("service", String(200)),
        Column("usage_type", String(300)),
        Column("resource_id", String(500)),
        Column("currency", String(3), nullable=False),
        Column("dims", Text, nullable=False),
        UniqueConstraint("series_key", "day"),
        prefixes=["TEMPORARY"],
    )


class BillingStage:
    """Per-(series, day) sums: a bounded buffer in memory, spilled into a temporary table.

    Used by the file importer and by the Athena importer, so both normalise the same way.
    """

    def __init__(
        self,
        session: Session,
        source: str,
        pending_limit: int = PENDING_LIMIT,
        *,
        fmt: str | None = None,
    ) -> None:
        self.session = session
        self.source = source
        self.fmt = fmt or source  # focus or cur2: how charge categories are named
        self.pending_limit = pending_limit
        self.table = _stage_table(MetaData())
        self.pending: dict[tuple[str, date], list[Any]] = {}
        self._keys: dict[tuple, tuple[str, bool, dict[str, Any]]] = {}
        self.currency: str | None = None
        self.currency_first_row: int | None = None
        self.rows = 0
        self.llm_rows = 0
        self.by_service: dict[str, Decimal] = {}
        self.llm_cost = Decimal(0)
        self.total_cost = Decimal(0)
        self.first_day: date | None = None
        self.last_day: date | None = None
        connection = session.connection()
        self.table.drop(connection, checkfirst=True)
        self.table.create(connection)

    def add(self, line: BillingLine, row_number: int) -> None:
        if self.currency is None:
            self.currency, self.currency_first_row = line.currency, row_number
        elif line.currency != self.currency:
            raise BadInput(
                f"{self.source}: the file mixes currencies: {self.currency} (from row "
                f"{self.currency_first_row}) and {line.currency} (row {row_number}). Export one "
                "billing currency per file, or import each currency's rows separately."
            )
        raw = (
            line.account,
            line.region,
            line.service,
            line.usage_type,
            line.resource_id,
            line.charge_category,
            line.product_code,
            line.publisher,
            line.iam_principal,
            line.tags_key,
            line.charge_class,
            _correction_of(line),
        )
        known = self._keys.get(raw)
        if known is None:
            known = self._describe(line)
            if len(self._keys) > KEY_CACHE_LIMIT:
                self._keys.clear()
            self._keys[raw] = known
        key, llm, _columns = known
        slot = self.pending.get((key, line.day))
        if slot is None:
            self.pending[(key, line.day)] = [line.cost, line.quantity, known]
            if len(self.pending) >= self.pending_limit:
                self.flush()
        else:
            slot[0] += line.cost
            slot[1] += line.quantity
        self.rows += 1
        service = line.service or "(none)"
        self.by_service[service] = self.by_service.get(service, Decimal(0)) + line.cost
        self.total_cost += line.cost
        if llm:
            self.llm_rows += 1
            self.llm_cost += line.cost
        if self.first_day is None or line.day < self.first_day:
            self.first_day = line.day
        if self.last_day is None or line.day > self.last_day:
            self.last_day = line.day

    def _describe(self, line: BillingLine) -> tuple[str, bool, dict[str, Any]]:
        """A series' key, whether it is LLM spend, and its stage columns (computed once)."""
        # same tags, same key, however the export wrote them
        canonical = json.dumps(line.tags, sort_keys=True)
        tags_digest = hashlib.sha256(canonical.encode()).hexdigest()[:12] if line.tags else ""
        parts = [
            self.source,
            line.account,
            line.region,
            line.service,
            line.usage_type,
            line.resource_id,
            line.charge_category,
            line.iam_principal,
            tags_digest,
        ]
        correction = _correction_of(line)
        if correction:  # its own series: adds to its day, never replaces the original charge
            parts.append(correction)
        key = series_key(*parts)
        llm = is_llm_line(line.product_code, line.service, line.publisher)
        kind = charge_kind(self.fmt, line.charge_category)
        columns = {
            "series_key": key,
            "is_llm": 1 if llm else 0,
            "charge_kind": kind,
            "account": _fit(line.account, 32),
            "region": _fit(line.region, 32),
            "service": _fit(line.service, 200),
            "usage_type": _fit(line.usage_type, 300),
            "resource_id": _fit(line.resource_id, 500),
            "currency": line.currency,
            "dims": json.dumps(line_dimensions(line), sort_keys=True),
        }
        return key, llm, columns

    def flush(self) -> None:
        """Add the buffered sums to the stage, a few thousand rows per statement."""
        if not self.pending:
            return
        table = self.table
        statement = dialect_insert(self.session, table)
        statement = statement.on_conflict_do_update(
            index_elements=["series_key", "day"],
            set_={
                "cost_nano": table.c.cost_nano + statement.excluded.cost_nano,
                "quantity": table.c.quantity + statement.excluded.quantity,
            },
        )
        batch: list[dict[str, Any]] = []
        for (_key, day), (cost, quantity, (_k, _llm, columns)) in self.pending.items():
            batch.append(
                {
                    **columns,
                    "day": day,
                    "cost_nano": int((cost / NANO).to_integral_value()),
                    "quantity": quantity,
                }
            )
            if len(batch) == FLUSH_BATCH:
                self.session.execute(statement, batch)  # executemany: compiled once
                batch = []
        if batch:
            self.session.execute(statement, batch)
        self.pending.clear()

    def merge(self, now: datetime) -> int:
        """Upsert the staged sums into cost_facts in one statement; returns the fact count."""
        self.flush()
        stage = self.table
        dialect = self.session.get_bind().dialect.name
        if dialect == "postgresql":
            cost = cast(stage.c.cost_nano, Numeric(38, 9)) / literal(1_000_000_000)
            dims = cast(stage.c.dims, JSON)
        else:  # SQLite: integer division would truncate; the JSON column stores the text as is
            cost = stage.c.cost_nano / literal_column("1000000000.0")
            dims = stage.c.dims
        facts = CostFact.__table__
        columns = [
            "source",
            "series_key",
            "day",
            "account",
            "region",
            "service",
            "usage_type",
            "resource_id",
            "cost",
            "currency",
            "usage_quantity",
            "is_llm",
            "charge_kind",
            "dimensions",
            "collected_at",
        ]
        query = select(
            literal(self.source, String(32)),
            stage.c.series_key,
            stage.c.day,
            stage.c.account,
            stage.c.region,
            stage.c.service,
            stage.c.usage_type,
            stage.c.resource_id,
            cost,
            stage.c.currency,
            stage.c.quantity,
            cast(stage.c.is_llm, Boolean),
            stage.c.charge_kind,
            dims,
            literal(now, facts.c.collected_at.type),
        ).where(true())  # SQLite needs a WHERE before ON CONFLICT in INSERT ... SELECT
        statement = dialect_insert(self.session, facts).from_select(columns, query)
        statement = statement.on_conflict_do_update(
            index_elements=["source", "series_key", "day"],
            set_={
                name: statement.excluded[name]
                for name in columns
                if name not in ("source", "series_key", "day") and name not in PRESERVED_ON_CONFLICT
            },
        )
        self.session.execute(statement)
        count = self.session.scalar(select(func.count()).select_from(stage)) or 0
        stage.drop(self.session.connection())
        if self.first_day is not None and self.last_day is not None:
            settle(self.session, self.first_day, self.last_day)
        return count


# --- the import -----------------------------------------------------------------------------------


@dataclass
class ImportReport:
    inputs: list[str]
    format: str
    rows: int = 0
    llm_rows: int = 0
    facts: int = 0
    currency: str | None = None
    first_day: date | None = None
    last_day: date | None = None
    total_cost: Decimal = Decimal(0)
    llm_cost: Decimal = Decimal(0)
    by_service: dict[str, Decimal] = field(default_factory=dict)
    attribution: AttributionSummary = field(default_factory=AttributionSummary)
    seconds: float = 0.0
    bytes_scanned: int | None = None  # Athena: what the query scanned (and was billed for)

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs,
            "format": self.format,
            "rows": self.rows,
            "llm_rows": self.llm_rows,
            "facts": self.facts,
            "currency": self.currency,
            "first_day": self.first_day.isoformat() if self.first_day else None,
            "last_day": self.last_day.isoformat() if self.last_day else None,
            "total_cost": str(self.total_cost),
            "llm_cost": str(self.llm_cost),
            "by_service": {name: str(total) for name, total in sorted(self.by_service.items())},
            "attribution": {
                "series": self.attribution.series,
                "attributed": self.attribution.attributed,
                "unattributed": self.attribution.unattributed,
                "discovered": self.attribution.discovered,
            },
            "seconds": round(self.seconds, 3),
            "bytes_scanned": self.bytes_scanned,
        }


class RowErrors:
    """Bad rows, reported by file and row number; the import writes nothing if there are any."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.count = 0

    def add(self, source: str, row: int, reason: str) -> None:
        self.count += 1
        if len(self.messages) < MAX_REPORTED_ERRORS:
            self.messages.append(f"{source}: row {row}: {reason}")

    def raise_if_any(self) -> None:
        if not self.count:
            return
        more = (
            f"\n  ... and {self.count - len(self.messages)} more"
            if self.count > len(self.messages)
            else ""
        )
        rows = "row" if self.count == 1 else "rows"
        raise BadInput(
            f"{self.count} {rows} could not be read; nothing was imported. Fix or remove them and "
            "import again:\n  " + "\n  ".join(self.messages) + more
        )


def import_billing(
    session_factory: sessionmaker[Session],
    paths: Iterable[str | Path],
    *,
    fmt: str | None = None,
    now: datetime | None = None,
    tag_key: str | None = None,
    pending_limit: int = PENDING_LIMIT,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import billing export files in one transaction; BadInput (nothing written) on any bad row."""
    if fmt is not None and fmt not in FORMATS:
        raise BadInput(f"unknown billing format {fmt!r}; use one of {', '.join(FORMATS)}")
    started = time.perf_counter()
    now = now or utcnow()
    files = [Path(p) for p in paths]
    if not files:
        raise BadInput("no billing file given")
    sources = [open_source(path) for path in files]  # headers first: fail fast, before any write
    layouts = [make_layout(source.header, fmt, source.name) for source in sources]
    formats = {layout.fmt for layout in layouts}
    if len(formats) > 1:
        raise BadInput("the files mix FOCUS and CUR 2.0 exports; import each format separately")
    chosen = formats.pop()
    report = ImportReport(inputs=[str(p) for p in files], format=chosen)
    errors = RowErrors()
    with transaction(session_factory) as session:
        stage = BillingStage(session, chosen, pending_limit, fmt=chosen)
        for source, layout in zip(sources, layouts, strict=True):
            read_into(stage, source, layout, errors, progress)
        errors.raise_if_any()
        if stage.rows == 0:
            raise BadInput(
                f"{', '.join(report.inputs)}: no billing rows found; nothing was imported"
            )
        check_currency(session, stage.currency or "USD", ", ".join(report.inputs))
        report.facts = stage.merge(now)
        report.attribution = attribute_facts(
            session, tag_key=tag_key, sources=[chosen], actor=f"import:{chosen}"
        )
        fill_report(report, stage)
    refresh_after_writing(session_factory)
    report.seconds = time.perf_counter() - started
    return report


def read_into(
    stage: BillingStage,
    source: Source,
    layout: Layout,
    errors: RowErrors,
    progress: Callable[[int], None] | None = None,
) -> None:
    width = len(source.header)
    parser = LineParser(layout, width)
    try:
        for number, values in source.rows:
            if len(values) != width:
                if len(values) == 0:
                    continue  # a blank line
                errors.add(
                    source.name,
                    number,
                    f"has {len(values)} fields where the header has {width} (a truncated or garbled line)",
                )
                continue
            try:
                line = parser.parse(values)
            except RowError as error:
                errors.add(source.name, number, str(error))
                continue
            if not errors.count:  # once a row is bad nothing will be written: just keep checking
                stage.add(line, number)
            if progress and number % 100_000 == 0:
                progress(number)
    except _Unreadable as unreadable:
        errors.add(source.name, unreadable.row, f"{unreadable.reason}; reading stopped here")


def fill_report(report: ImportReport, stage: BillingStage) -> None:
    report.rows = stage.rows
    report.llm_rows = stage.llm_rows
    report.currency = stage.currency
    report.first_day = stage.first_day
    report.last_day = stage.last_day
    report.total_cost = stage.total_cost
    report.llm_cost = stage.llm_cost
    report.by_service = dict(stage.by_service)

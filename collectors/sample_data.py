"""Realistic synthetic Bedrock and GPU data for the demo and for tests (deterministic, seeded).

No public billing export contains Bedrock rows, so this generator writes them, following the
real naming (aws.md §3): first-party `Amazon Bedrock` rows with `USE1-NovaPro-input-tokens`
usage types, Marketplace rows billed as "Claude 3 Haiku (Amazon Bedrock Edition)" with
`USE1-MP:USE1_InputTokenCount-Units`, application inference profile ARNs as resource ids,
and the `llm-workload` cost-allocation tag. Usage is generated hourly first; the bill is the
daily sum of those tokens × genai-prices prices (× a per-workload drift, to show estimate vs
billed), so the CloudWatch-like usage and the FOCUS bill agree the way real ones do.

Patterns built in, for the checks to find: steady growth, weekday seasonality, a retry storm
(throttles and invocations surge, upstream flat), prompt-token growth, fan-out growth, a
one-day spend anomaly, untagged spend (unattributed), a tag value no workload claims (a
discovered workload), and an idle self-hosted GPU fleet next to a busy one.

    python -m collectors.sample_data --out collectors/data          # regenerate the bundle
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import json
import math
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from llmgov.collectors.prices import PriceBook, gpu_hourly_price
from llmgov.collectors.upserts import series_key, upsert_facts
from llmgov.collectors.upstream import write as write_upstream
from llmgov.models.facts import GpuFact, UsageFact
from llmgov.models.registry import Workload

SOURCE = "sample"
SEED = 7
DAYS = 60
SAMPLE_END = date(2026, 11, 26)  # last day of the bundled files
DATA_DIR = Path(__file__).parent / "data"
FOCUS_FILE = "sample_focus_bedrock.csv"
USAGE_FILE = "sample_usage_hourly.json.gz"
TAG_KEY = "llm-workload"
MAIN_ACCOUNT = "111122223333"
SECOND_ACCOUNT = "444455556666"
PROFILE_ARN = "arn:aws:bedrock:{region}:{account}:application-inference-profile/{profile}"
REGION_CODES = {"us-east-1": ("USE1", "US East (N. Virginia)"), "eu-west-1": ("EU", "EU (Ireland)")}

FOCUS_COLUMNS = [
    "AvailabilityZone", "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency",
    "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription",
    "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart", "CommitmentDiscountCategory",
    "CommitmentDiscountId", "CommitmentDiscountName", "CommitmentDiscountStatus",
    "CommitmentDiscountType", "ConsumedQuantity", "ConsumedUnit", "ContractedCost",
    "ContractedUnitPrice", "EffectiveCost", "InvoiceIssuerName", "ListCost", "ListUnitPrice",
    "PricingCategory", "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName",
    "RegionId", "RegionName", "ResourceId", "ResourceName", "ResourceType", "ServiceCategory",
    "Id", "ServiceName", "SkuId", "SkuPriceId", "SubAccountId", "SubAccountName", "Tags",
    "x_ServiceCode", "x_UsageType",
]  # fmt: skip


@dataclass(frozen=True)
class SampleWorkload:
    """One synthetic LLM workload; `tag` None means its spend is untagged (unattributed)."""

    tag: str | None
    model_id: str
    usage_name: str  # the model part of first-party usage types, e.g. NovaPro
    requests_per_day: float
    input_tokens: float  # per request
    output_tokens: float
    marketplace_service: str | None = None  # "Claude 3 Haiku (Amazon Bedrock Edition)"
    profile: str | None = None  # application inference profile id (CloudWatch ModelId)
    account: str = MAIN_ACCOUNT
    region: str = "us-east-1"
    growth_per_day: float = 0.004
    prompt_growth_per_day: float = 0.0
    cache_read_share: float = 0.0  # cache-read tokens as a share of input tokens
    fan_out_start: float = 1.0  # LLM calls per upstream request, at the start ...
    fan_out_end: float = 1.0  # ... and at the end of the window
    retry_storm_days_ago: tuple[int, ...] = ()
    anomaly_days_ago: tuple[int, ...] = ()
    billed_drift: float = 0.0  # billed cost vs token estimate (e.g. 0.1 = 10 % above)


@dataclass(frozen=True)
class SampleFleet:
    """A self-hosted GPU fleet: instances, how busy, and a vLLM model serving tokens."""

    tag: str
    instance_type: str
    instances: tuple[str, ...]
    utilisation: float  # mean per-GPU percent
    model_name: str
    tokens_per_hour: float
    region: str = "us-east-1"
    account: str = MAIN_ACCOUNT


DEFAULT_WORKLOADS = (
    SampleWorkload(
        tag="search-summaries",
        model_id="anthropic.claude-3-haiku-20240307-v1:0",
        usage_name="Claude3Haiku",
        requests_per_day=42_000,
        input_tokens=1_150,
        output_tokens=240,
        marketplace_service="Claude 3 Haiku (Amazon Bedrock Edition)",
        profile="a1b2c3d4e5f6",
        growth_per_day=0.008,
    ),
    SampleWorkload(
        tag="support-assistant",
        model_id="anthropic.claude-3-5-sonnet-20240620-v1:0",
        usage_name="Claude3.5Sonnet",
        requests_per_day=7_500,
        input_tokens=2_600,
        output_tokens=520,
        marketplace_service="Claude 3.5 Sonnet (Amazon Bedrock Edition)",
        cache_read_share=0.45,
        fan_out_start=2.0,
        fan_out_end=3.4,
        retry_storm_days_ago=(3,),
        billed_drift=0.10,
    ),
    SampleWorkload(
        tag="catalog-enrichment",
        model_id="amazon.nova-pro-v1:0",
        usage_name="NovaPro",
        requests_per_day=18_000,
        input_tokens=900,
        output_tokens=300,
        prompt_growth_per_day=0.015,
    ),
    SampleWorkload(
        tag="doc-translation",
        model_id="meta.llama3-1-70b-instruct-v1:0",
        usage_name="Llama3.1-70B",
        requests_per_day=4_000,
        input_tokens=1_800,
        output_tokens=1_700,
        region="eu-west-1",
        anomaly_days_ago=(9,),
    ),
    SampleWorkload(
        tag="fraud-explainer",
        model_id="amazon.nova-lite-v1:0",
        usage_name="NovaLite",
        requests_per_day=25_000,
        input_tokens=700,
        output_tokens=120,
        growth_per_day=0.0,
    ),
    SampleWorkload(  # a team that never tagged anything: unattributed spend
        tag=None,
        model_id="anthropic.claude-3-haiku-20240307-v1:0",
        usage_name="Claude3Haiku",
        requests_per_day=9_000,
        input_tokens=800,
        output_tokens=200,
        marketplace_service="Claude 3 Haiku (Amazon Bedrock Edition)",
        account=SECOND_ACCOUNT,
    ),
    SampleWorkload(  # tagged, but nobody registered it: becomes a discovered workload
        tag="marketing-copy",
        model_id="amazon.nova-micro-v1:0",
        usage_name="NovaMicro",
        requests_per_day=12_000,
        input_tokens=500,
        output_tokens=350,
        account=SECOND_ACCOUNT,
        growth_per_day=0.02,
    ),
)
DEFAULT_FLEETS = (
    SampleFleet(
        tag="support-llama",
        instance_type="g6.12xlarge",
        instances=("i-0abc1234def567890", "i-0abc1234def567891"),
        utilisation=14.0,
        model_name="llama-3.1-8b",
        tokens_per_hour=900_000,
    ),
    SampleFleet(
        tag="ranking-embedder",
        instance_type="g5.xlarge",
        instances=("i-0fed9876cba543210",),
        utilisation=71.0,
        model_name="bge-large",
        tokens_per_hour=4_000_000,
    ),
)


@dataclass
class SampleData:
    usage: list[dict[str, Any]] = field(default_factory=list)  # hourly, CloudWatch-like
    gpu: list[dict[str, Any]] = field(default_factory=list)  # hourly per instance
    upstream: list[dict[str, Any]] = field(default_factory=list)  # hourly per workload tag
    start: date | None = None
    end: date | None = None


def _diurnal(hour: int) -> float:
    """Share of a day's traffic in this UTC hour: a working-day bump over a night floor."""
    return 0.45 + math.exp(-((hour - 14) ** 2) / 18.0)


DIURNAL_TOTAL = sum(_diurnal(h) for h in range(24))


def generate(end: date = SAMPLE_END, days: int = DAYS, seed: int = SEED) -> SampleData:
    """Hourly usage, GPU and upstream records for `days` days ending with `end` (inclusive)."""
    rng = random.Random(seed)
    start = end - timedelta(days=days - 1)
    data = SampleData(start=start, end=end)
    for workload in DEFAULT_WORKLOADS:
        for offset in range(days):
            day = start + timedelta(days=offset)
            days_ago = (end - day).days
            weekday = 0.55 if day.weekday() >= 5 else 1.0
            volume = workload.requests_per_day * (1 + workload.growth_per_day) ** offset * weekday
            volume *= rng.uniform(0.94, 1.06)
            if days_ago in workload.anomaly_days_ago:
                volume *= 4.0
            prompt = workload.input_tokens * (1 + workload.prompt_growth_per_day) ** offset
            fan_out = workload.fan_out_start + (
                workload.fan_out_end - workload.fan_out_start
            ) * offset / max(1, days - 1)
            storm = days_ago in workload.retry_storm_days_ago
            for hour in range(24):
                moment = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
                calls = volume * _diurnal(hour) / DIURNAL_TOTAL
                upstream = calls / fan_out
                throttles = calls * rng.uniform(0.0, 0.004)
                if storm and 9 <= hour <= 14:
                    throttles = calls * rng.uniform(1.5, 2.5)
                    calls *= 3.0  # the client retries; upstream stays where it was
                cache_read = prompt * workload.cache_read_share
                latency = (350 + 9 * workload.output_tokens**0.85) * rng.uniform(0.9, 1.15)
                data.usage.append(
                    {
                        "hour": moment.isoformat(),
                        "account": workload.account,
                        "region": workload.region,
                        "model_id": workload.profile or workload.model_id,
                        "base_model_id": workload.model_id,
                        "tag": workload.tag,
                        "invocations": round(calls),
                        "input_tokens": round(calls * (prompt - cache_read)),
                        "output_tokens": round(
                            calls * workload.output_tokens * rng.uniform(0.95, 1.05)
                        ),
                        "cache_read_tokens": round(calls * cache_read),
                        "cache_write_tokens": round(calls * prompt * 0.02)
                        if workload.cache_read_share
                        else 0,
                        "client_errors": round(calls * 0.002),
                        "server_errors": round(calls * rng.uniform(0.0, 0.001)),
                        "throttles": round(throttles),
                        "latency_ms_avg": round(latency, 1),
                        "latency_ms_p95": round(latency * 2.1, 1),
                    }
                )
                if workload.tag:
                    data.upstream.append(
                        {
                            "hour": moment.isoformat(),
                            "workload": workload.tag,
                            "requests": round(upstream),
                        }
                    )
    for fleet in DEFAULT_FLEETS:
        per_gpu = gpu_count_of(fleet.instance_type)
        for offset in range(days):
            day = start + timedelta(days=offset)
            for hour in range(24):
                moment = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
                busy = fleet.utilisation * (0.6 + 0.8 * _diurnal(hour) / 1.45)
                for index, instance in enumerate(fleet.instances):
                    data.gpu.append(
                        {
                            "hour": moment.isoformat(),
                            "account": fleet.account,
                            "region": fleet.region,
                            "instance": instance,
                            "instance_type": fleet.instance_type,
                            "gpu_count": per_gpu,
                            "utilisation_pct": round(min(100.0, busy * rng.uniform(0.85, 1.15)), 2),
                            "memory_used_pct": round(
                                rng.uniform(78, 92), 1
                            ),  # vLLM reserves most memory
                            "model_name": fleet.model_name,
                            "tokens_served": round(
                                fleet.tokens_per_hour
                                * _diurnal(hour)
                                / 1.45
                                * rng.uniform(0.9, 1.1)
                            )
                            if index == 0
                            else 0,
                            "tag": fleet.tag,
                        }
                    )
    return data


def gpu_count_of(instance_type: str) -> int:
    price = gpu_hourly_price(instance_type)
    return price.gpu_count if price else 1


# --- the FOCUS bill ------------------------------------------------------------------------------


def focus_rows(data: SampleData, prices: PriceBook | None = None) -> Iterator[dict[str, str]]:
    """Daily FOCUS 1.0 rows (plus AWS `x_` columns) for the sample's usage and GPU fleets."""
    prices = prices or PriceBook(today=data.end)
    workloads = {(w.tag, w.account, w.profile or w.model_id): w for w in DEFAULT_WORKLOADS}
    daily: dict[tuple, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for record in data.usage:
        day = record["hour"][:10]
        key = (day, record["tag"], record["account"], record["model_id"])
        for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"):
            daily[key][name] += record[name]
    for (day, tag, account, model_key), tokens in sorted(
        daily.items(), key=lambda item: tuple(str(part) for part in item[0])
    ):
        workload = workloads[(tag, account, model_key)]
        price = prices.token_price(workload.model_id)
        if price is None:
            raise ValueError(f"no price for sample model {workload.model_id}")
        kinds = [
            ("input", tokens["input_tokens"], price.input_mtok),
            ("output", tokens["output_tokens"], price.output_mtok),
            ("cache-read", tokens["cache_read_tokens"], price.cache_read_mtok or price.input_mtok),
            (
                "cache-write",
                tokens["cache_write_tokens"],
                price.cache_write_mtok or price.input_mtok,
            ),
        ]
        for kind, count, per_million in kinds:
            if not count:
                continue
            cost = (
                Decimal(str(count))
                / Decimal(1_000_000)
                * per_million
                * Decimal(str(1 + workload.billed_drift))
            )
            yield _bedrock_row(day, workload, kind, count, cost, per_million)
    yield from _gpu_rows(data)


def _bedrock_row(
    day: str, w: SampleWorkload, kind: str, tokens: float, cost: Decimal, per_million: Decimal
) -> dict[str, str]:
    prefix, region_name = REGION_CODES[w.region]
    if w.marketplace_service:
        dimension = {"input": "InputTokenCount", "output": "OutputTokenCount",
                     "cache-read": "CacheReadInputTokenCount", "cache-write": "CacheWriteInputTokenCount"}[kind]  # fmt: skip
        usage_type = f"{prefix}-MP:{prefix}_{dimension}-Units"
        service, publisher = w.marketplace_service, "Anthropic"
        service_code = "prod-" + hashlib.sha256(w.marketplace_service.encode()).hexdigest()[:13]
    else:
        suffix = {"input": "input-tokens", "output": "output-tokens",
                  "cache-read": "cache-read-input-token-count", "cache-write": "cache-write-input-token-count"}[kind]  # fmt: skip
        usage_type = f"{prefix}-{w.usage_name}-{suffix}"
        service, publisher, service_code = (
            "Amazon Bedrock",
            "Amazon Web Services, Inc.",
            "AmazonBedrock",
        )
    resource = (
        PROFILE_ARN.format(region=w.region, account=w.account, profile=w.profile)
        if w.profile
        else "NULL"
    )
    tags = json.dumps({TAG_KEY: w.tag}) if w.tag else "NULL"
    return _focus_row(
        day=day,
        cost=cost,
        account=w.account,
        region=w.region,
        region_name=region_name,
        service=service,
        service_category="AI and Machine Learning",
        publisher=publisher,
        service_code=service_code,
        usage_type=usage_type,
        quantity=Decimal(str(tokens)) / 1000,
        unit="1K tokens",
        unit_price=per_million / 1000,
        description=f"${per_million} per million {kind} tokens of {w.model_id} in {region_name}",
        resource=resource,
        resource_type="application-inference-profile" if w.profile else "NULL",
        tags=tags,
    )


def _gpu_rows(data: SampleData) -> Iterator[dict[str, str]]:
    """EC2 instance-hours of the self-hosted fleets: cloud spend, not LLM-API spend."""
    hours: dict[tuple[str, str, str, str], int] = defaultdict(int)
    tags = {}
    for record in data.gpu:
        hours[
            (record["hour"][:10], record["instance"], record["instance_type"], record["region"])
        ] += 1
        tags[record["instance"]] = record["tag"]
    for (day, instance, instance_type, region), count in sorted(hours.items()):
        price = gpu_hourly_price(instance_type, region)
        if price is None or price.per_hour is None:
            continue
        prefix, region_name = REGION_CODES[region]
        yield _focus_row(
            day=day,
            cost=price.per_hour * count,
            account=MAIN_ACCOUNT,
            region=region,
            region_name=region_name,
            service="Amazon Elastic Compute Cloud",
            service_category="Compute",
            publisher="Amazon Web Services, Inc.",
            service_code="AmazonEC2",
            usage_type=f"{prefix}-BoxUsage:{instance_type}"
            if prefix != "USE1"
            else f"BoxUsage:{instance_type}",
            quantity=Decimal(count),
            unit="Hrs",
            unit_price=price.per_hour,
            description=f"${price.per_hour} per On Demand Linux {instance_type} Instance Hour",
            resource=instance,
            resource_type="instance",
            tags=json.dumps({TAG_KEY: tags[instance]}),
        )


def _focus_row(
    *,
    day: str,
    cost: Decimal,
    account: str,
    region: str,
    region_name: str,
    service: str,
    service_category: str,
    publisher: str,
    service_code: str,
    usage_type: str,
    quantity: Decimal,
    unit: str,
    unit_price: Decimal,
    description: str,
    resource: str,
    resource_type: str,
    tags: str,
) -> dict[str, str]:
    start = date.fromisoformat(day)
    period_start = start.replace(day=1)
    period_end = (period_start + timedelta(days=32)).replace(day=1)
    amount = f"{cost.quantize(Decimal('0.0000000001'))}"
    row_id = hashlib.sha256(f"{day}|{account}|{usage_type}|{resource}|{tags}".encode()).hexdigest()[
        :20
    ]
    return {
        "AvailabilityZone": "NULL",
        "BilledCost": amount,
        "BillingAccountId": MAIN_ACCOUNT,
        "BillingAccountName": "Example Corp",
        "BillingCurrency": "USD",
        "BillingPeriodEnd": f"{period_end} 00:00:00",
        "BillingPeriodStart": f"{period_start} 00:00:00",
        "ChargeCategory": "Usage",
        "ChargeClass": "NULL",
        "ChargeDescription": description,
        "ChargeFrequency": "Usage-Based",
        "ChargePeriodEnd": f"{start + timedelta(days=1)} 00:00:00",
        "ChargePeriodStart": f"{start} 00:00:00",
        "CommitmentDiscountCategory": "NULL",
        "CommitmentDiscountId": "NULL",
        "CommitmentDiscountName": "NULL",
        "CommitmentDiscountStatus": "NULL",
        "CommitmentDiscountType": "NULL",
        "ConsumedQuantity": f"{quantity:.6f}",
        "ConsumedUnit": unit,
        "ContractedCost": amount,
        "ContractedUnitPrice": f"{unit_price}",
        "EffectiveCost": amount,
        "InvoiceIssuerName": "Amazon Web Services, Inc.",
        "ListCost": amount,
        "ListUnitPrice": f"{unit_price}",
        "PricingCategory": "Standard",
        "PricingQuantity": f"{quantity:.6f}",
        "PricingUnit": unit,
        "ProviderName": "AWS",
        "PublisherName": publisher,
        "RegionId": region,
        "RegionName": region_name,
        "ResourceId": resource,
        "ResourceName": "NULL",
        "ResourceType": resource_type,
        "ServiceCategory": service_category,
        "Id": row_id,
        "ServiceName": service,
        "SkuId": "NULL",
        "SkuPriceId": "NULL",
        "SubAccountId": account,
        "SubAccountName": "search-prod" if account == MAIN_ACCOUNT else "growth-sandbox",
        "Tags": tags,
        "x_ServiceCode": service_code,
        "x_UsageType": usage_type,
    }


def write_focus(path: Path, data: SampleData) -> int:
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(
            handle, FOCUS_COLUMNS, quoting=csv.QUOTE_MINIMAL, lineterminator="\n"
        )
        writer.writeheader()
        for row in focus_rows(data):
            writer.writerow(row)
            count += 1
    return count


def write_usage(path: Path, data: SampleData) -> None:
    document = {
        "generated_by": "collectors.sample_data",
        "start": data.start.isoformat() if data.start else None,
        "end": data.end.isoformat() if data.end else None,
        "usage": data.usage,
        "gpu": data.gpu,
        "upstream": data.upstream,
    }
    # mtime=0 keeps the gzip bytes identical from one run to the next
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as handle:
        handle.write(json.dumps(document, separators=(",", ":")).encode())


def write_sample(
    directory: Path, end: date = SAMPLE_END, days: int = DAYS, seed: int = SEED
) -> tuple[Path, Path]:
    """Write the FOCUS bill and the hourly usage JSON; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    data = generate(end, days, seed)
    focus, usage = directory / FOCUS_FILE, directory / USAGE_FILE
    write_focus(focus, data)
    write_usage(usage, data)
    return focus, usage


def load_usage(path: Path = DATA_DIR / USAGE_FILE) -> SampleData:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        document = json.load(handle)
    return SampleData(
        usage=document["usage"],
        gpu=document["gpu"],
        upstream=document["upstream"],
        start=date.fromisoformat(document["start"]),
        end=date.fromisoformat(document["end"]),
    )


# --- the `sample` collector -----------------------------------------------------------------------


def sample_settings(config: dict[str, Any] | None) -> tuple[date, int, int]:
    config = config or {}
    end = config.get("end", SAMPLE_END)
    return (
        date.fromisoformat(str(end)) if not isinstance(end, date) else end,
        int(config.get("days", DAYS)),
        int(config.get("seed", SEED)),
    )


def collect(
    session: Session,
    *,
    now: datetime,
    prices: PriceBook,
    end: date = SAMPLE_END,
    days: int = DAYS,
    seed: int = SEED,
    since: date | None = None,
) -> int:
    """Write the sample's usage, GPU and upstream facts (source `sample`); returns the rows."""
    data = (
        load_usage() if (end, days, seed) == (SAMPLE_END, DAYS, SEED) else generate(end, days, seed)
    )
    first = since.isoformat() if since else ""
    usage_rows = []
    for record in data.usage:
        if record["hour"] < first:
            continue
        model_id = record["model_id"]
        dims: dict[str, Any] = {
            "account": record["account"],
            "region": record["region"],
            "model_id": model_id,
        }
        if model_id != record["base_model_id"]:
            dims["inference_profile"] = PROFILE_ARN.format(
                region=record["region"], account=record["account"], profile=model_id
            )
        usage_rows.append(
            {
                "source": SOURCE,
                "series_key": series_key("sample", record["account"], record["region"], model_id),
                "hour": datetime.fromisoformat(record["hour"]),
                "account": record["account"],
                "region": record["region"],
                "model_id": model_id,
                **{
                    name: float(record[name])
                    for name in (
                        "invocations",
                        "input_tokens",
                        "output_tokens",
                        "cache_read_tokens",
                        "cache_write_tokens",
                        "client_errors",
                        "server_errors",
                        "throttles",
                    )
                },
                "latency_ms_avg": record["latency_ms_avg"],
                "latency_ms_p95": record["latency_ms_p95"],
                "estimated_cost": prices.estimate(
                    record["base_model_id"],
                    record["input_tokens"],
                    record["output_tokens"],
                    record["cache_read_tokens"],
                    record["cache_write_tokens"],
                ),
                "dimensions": dims,
                "collected_at": now,
            }
        )
    gpu_rows = [
        {
            "source": SOURCE,
            "series_key": series_key(
                "sample-gpu", record["account"], record["region"], record["instance"]
            ),
            "hour": datetime.fromisoformat(record["hour"]),
            "resource_id": record["instance"],
            "instance_type": record["instance_type"],
            "gpu_count": record["gpu_count"],
            "utilisation_pct": record["utilisation_pct"],
            "memory_used_pct": record["memory_used_pct"],
            "tokens_served": float(record["tokens_served"]),
            "dimensions": {
                "account": record["account"],
                "region": record["region"],
                "instance": record["instance"],
                "labels": {"job": "vllm", "model_name": record["model_name"]},
            },
            "collected_at": now,
        }
        for record in data.gpu
        if record["hour"] >= first
    ]
    slugs = dict(session.execute(select(Workload.slug, Workload.id)).all())
    upstream_rows = [
        {
            "workload_id": slugs[record["workload"]],
            "hour": datetime.fromisoformat(record["hour"]),
            "requests": float(record["requests"]),
            "source": SOURCE,
            "collected_at": now,
        }
        for record in data.upstream
        if record["workload"] in slugs and record["hour"] >= first
    ]
    return (
        upsert_facts(session, UsageFact, usage_rows)
        + upsert_facts(session, GpuFact, gpu_rows)
        + write_upstream(session, upstream_rows)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write the synthetic Bedrock sample (FOCUS bill + hourly usage)."
    )
    parser.add_argument("--out", type=Path, default=DATA_DIR)
    parser.add_argument("--end", type=date.fromisoformat, default=SAMPLE_END)
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    focus, usage = write_sample(args.out, args.end, args.days, args.seed)
    print(f"wrote {focus} and {usage}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

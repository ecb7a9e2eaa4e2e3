"""Normalised facts written by the collectors, one row per source series and time bucket.

Every fact keeps its `source`, a `series_key` (the raw dimensions joined in a stable order,
so the natural key is short and indexable) and the raw `dimensions` themselves, so that
attribution can be re-run and can always say which rule claimed a fact. Writes are upserts
on the natural key: re-running a collection, or Cost Explorer restating a day, replaces.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.expression import false

from llmgov.models.base import Base, utcnow


class AttributedMixin:
    """The workload a fact was attributed to, and the rule that claimed it (None: unattributed).

    Each fact table declares its own index led by `workload_id` (the foreign key's lookups use
    it too), shaped for the queries that read the table."""

    workload_id: Mapped[int | None] = mapped_column(ForeignKey("workloads.id", ondelete="SET NULL"))
    rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("attribution_rules.id", ondelete="SET NULL")
    )


class UsageFact(AttributedMixin, Base):
    """Hourly Bedrock usage from CloudWatch AWS/Bedrock (the near-real-time signal)."""

    __tablename__ = "usage_facts"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    source: Mapped[str] = mapped_column(String(32))  # bedrock_cloudwatch, invocation_logs, ...
    series_key: Mapped[str] = mapped_column(String(500))
    hour: Mapped[datetime] = mapped_column()
    account: Mapped[str | None] = mapped_column(String(32))
    region: Mapped[str | None] = mapped_column(String(32))
    model_id: Mapped[str | None] = mapped_column(String(300))
    invocations: Mapped[float] = mapped_column(Float, default=0.0)
    input_tokens: Mapped[float] = mapped_column(Float, default=0.0)
    output_tokens: Mapped[float] = mapped_column(Float, default=0.0)
    cache_read_tokens: Mapped[float] = mapped_column(Float, default=0.0)
    cache_write_tokens: Mapped[float] = mapped_column(Float, default=0.0)
    client_errors: Mapped[float] = mapped_column(Float, default=0.0)
    server_errors: Mapped[float] = mapped_column(Float, default=0.0)
    throttles: Mapped[float] = mapped_column(Float, default=0.0)
    latency_ms_avg: Mapped[float | None] = mapped_column(Float)
    latency_ms_p95: Mapped[float | None] = mapped_column(Float)
    # token-based cost estimate (tokens x prices) at collection time, for estimate drift
    estimated_cost: Mapped[Decimal | None] = mapped_column()
    dimensions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    collected_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("source", "series_key", "hour"),
        Index("ix_usage_facts_hour", "hour"),
        # A workload's (or every workload's) token estimate over a range of hours, read from
        # the index alone (`/llm-cost` fills the days billing has not reached with it).
        Index("ix_usage_facts_workload_hour", "workload_id", "hour", "estimated_cost"),
        # each source's newest hour (freshness), and the list of sources, in a few seeks
        Index("ix_usage_facts_source_hour", "source", "hour"),
    )


class CostFact(AttributedMixin, Base):
    """Daily billed cost from Cost Explorer, CUR 2.0 or FOCUS exports (the truth, but late)."""

    __tablename__ = "cost_facts"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(32))  # cost_explorer, focus, cur2, athena
    series_key: Mapped[str] = mapped_column(String(500))
    day: Mapped[date] = mapped_column(Date)
    # AWS account ids are 12 digits; other clouds' billing accounts are longer (Azure: 52)
    account: Mapped[str | None] = mapped_column(String(200))
    region: Mapped[str | None] = mapped_column(String(32))
    service: Mapped[str | None] = mapped_column(String(200))
    usage_type: Mapped[str | None] = mapped_column(String(300))
    resource_id: Mapped[str | None] = mapped_column(String(500))
    # 9 decimals on every database: the exports' precision (billing imports sum in 1e-9 units)
    cost: Mapped[Decimal] = mapped_column(Numeric(24, 9, asdecimal=True))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    usage_quantity: Mapped[float | None] = mapped_column(Float)
    is_llm: Mapped[bool] = mapped_column(default=True)  # Bedrock/LLM spend vs other cloud spend
    # usage, or an adjustment kept out of spend: credit, refund, tax, fee, purchase, discount,
    # adjustment (`models/ledger.py`)
    charge_kind: Mapped[str] = mapped_column(String(16), default="usage", server_default="usage")
    # another source counts for this fact's account and day (`models.ledger.settle`)
    superseded: Mapped[bool] = mapped_column(default=False, server_default=false())
    dimensions: Mapped[dict[str, Any]] = mapped_column(default=dict)  # tags, principal, ...
    collected_at: Mapped[datetime] = mapped_column(default=utcnow)

    # Both indexes hold what `/llm-cost` sums (cost and the ledger's columns), so its scans of hundreds of
    # thousands of billed days never read the table itself.
    __table_args__ = (
        UniqueConstraint("source", "series_key", "day"),
        # a workload's (or team's) cost over a range of days, and the ranking of `all`
        Index(
            "ix_cost_facts_workload_day",
            "workload_id",
            "day",
            "cost",
            "is_llm",
            "charge_kind",
            "superseded",
        ),
        # the daily totals of every workload over a range of days
        Index(
            "ix_cost_facts_day_workload",
            "day",
            "workload_id",
            "cost",
            "is_llm",
            "charge_kind",
            "superseded",
        ),
        # the ledger's precedence: the other sources of one account and day
        Index("ix_cost_facts_account_day", "account", "day", "source"),
        # each source's newest day (freshness)
        Index("ix_cost_facts_source_day", "source", "day"),
    )


class GpuFact(AttributedMixin, Base):
    """Hourly GPU utilisation of a self-hosted instance or endpoint, and tokens it served."""

    __tablename__ = "gpu_facts"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(32))  # cwagent, sagemaker, dcgm, vllm
    series_key: Mapped[str] = mapped_column(String(500))
    hour: Mapped[datetime] = mapped_column()
    resource_id: Mapped[str] = mapped_column(String(300))  # instance id, endpoint, host
    instance_type: Mapped[str | None] = mapped_column(String(64))
    gpu_count: Mapped[int] = mapped_column(default=1)
    utilisation_pct: Mapped[float | None] = mapped_column(Float)  # 0-100 per GPU, averaged
    memory_used_pct: Mapped[float | None] = mapped_column(Float)
    tokens_served: Mapped[float | None] = mapped_column(Float)  # vLLM counters, per hour
    dimensions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    collected_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("source", "series_key", "hour"),
        Index("ix_gpu_facts_hour", "hour"),
        Index("ix_gpu_facts_workload_id", "workload_id"),
        Index("ix_gpu_facts_source_hour", "source", "hour"),
    )


class UpstreamFact(Base):
    """Hourly upstream requests of a workload (the requests that trigger LLM calls), for fan-out."""

    __tablename__ = "upstream_facts"

    id: Mapped[int] = mapped_column(primary_key=True)
    workload_id: Mapped[int] = mapped_column(ForeignKey("workloads.id", ondelete="CASCADE"))
    hour: Mapped[datetime] = mapped_column()
    requests: Mapped[float] = mapped_column(Float, default=0.0)
    source: Mapped[str] = mapped_column(String(32), default="cloudwatch")
    collected_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("workload_id", "hour", "source"),)


class Price(Base):
    """A price with its source and the date it was taken: token prices and GPU hourly prices."""

    __tablename__ = "prices"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # token | gpu_hour
    key: Mapped[str] = mapped_column(String(300))  # model id or instance type
    region: Mapped[str] = mapped_column(String(32), default="*")
    unit: Mapped[str] = mapped_column(String(32))  # per_mtok_input, per_mtok_output, per_hour...
    amount: Mapped[Decimal] = mapped_column()
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    source: Mapped[str] = mapped_column(String(64))  # genai-prices, override, bundled, pricing-api
    as_of: Mapped[date] = mapped_column(Date)

    __table_args__ = (UniqueConstraint("kind", "key", "region", "unit"),)


class SourceStatus(Base):
    """Each source's (and account/region scope's) last success and last error, for stale_data."""

    __tablename__ = "source_status"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(200), default="*")  # account/region or url
    last_success_at: Mapped[datetime | None] = mapped_column()
    last_error_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    rows_last_run: Mapped[int] = mapped_column(default=0)

    __table_args__ = (UniqueConstraint("source", "scope"),)


class CheckWatermark(Base):
    """What a check has evaluated: facts collected up to `collected_through` (a late bill
    or a first import collected after it brings days the check has not seen yet)."""

    __tablename__ = "check_watermarks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)  # the check, e.g. spend_anomaly
    collected_through: Mapped[datetime | None] = mapped_column()
    evaluated_through: Mapped[date | None] = mapped_column(Date)  # the last day evaluated
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiCallLog(Base):
    """What the bot itself asked of paid or rate-limited APIs (Cost Explorer is $0.01 a request)."""

    __tablename__ = "api_calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    service: Mapped[str] = mapped_column(String(32))  # ce, cloudwatch, slack, ...
    operation: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(default=1)
    cost: Mapped[Decimal] = mapped_column(default=Decimal(0))
    run_id: Mapped[str | None] = mapped_column(String(64))

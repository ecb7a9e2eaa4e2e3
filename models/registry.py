"""The ownership registry: teams, people, workloads, attribution rules, the organisation
profile, source settings and the audit trail of every change."""

from __future__ import annotations

import enum
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from llmgov.models.base import Base, utcnow

# A workload's slug: lowercase letters and digits in hyphen-separated words, e.g.
# search-summaries. The one definition every entry point (registry file, register form,
# slash commands) checks against, so what one accepts the others can find.
SLUG_MAX = 64  # Workload.slug
SLUG_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def is_slug(text: str) -> bool:
    return len(text) <= SLUG_MAX and SLUG_PATTERN.fullmatch(text) is not None


class Platform(enum.StrEnum):
    BEDROCK = "bedrock"
    SELF_HOSTED = "self_hosted"
    SAGEMAKER = "sagemaker"
    OTHER = "other"


class WorkloadStatus(enum.StrEnum):
    ACTIVE = "active"
    EXPERIMENT = "experiment"
    DISCOVERED = "discovered"  # found in the data with spend and no rule: an ownership gap
    RETIRED = "retired"


class RuleKind(enum.StrEnum):
    """What a rule matches in a fact's raw dimensions."""

    TAG = "tag"  # cost-allocation tag key/value
    INFERENCE_PROFILE = "inference_profile"  # application inference profile ARN
    MODEL_ID = "model_id"  # Bedrock model id, optionally with account and region
    IAM_PRINCIPAL = "iam_principal"  # line_item_iam_principal
    INSTANCE = "instance"  # EC2 instance id (CloudWatch agent InstanceId)
    HOST = "host"  # CloudWatch agent host dimension
    ENDPOINT = "endpoint"  # SageMaker endpoint name
    PROMETHEUS = "prometheus"  # a Prometheus label selector
    ACCOUNT = "account"  # a whole AWS account


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(SLUG_MAX), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    channel_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    workloads: Mapped[list[Workload]] = relationship(back_populates="team")


class Person(Base):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    slack_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    tz: Mapped[str | None] = mapped_column(String(64))  # IANA zone from Slack users.info
    active: Mapped[bool] = mapped_column(default=True)  # False once Slack says deleted
    checked_at: Mapped[datetime | None] = mapped_column()  # last users.info refresh
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def label(self) -> str:
        return self.name or self.email or self.slack_id or f"person {self.id}"


class Workload(Base):
    __tablename__ = "workloads"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(SLUG_MAX), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    platform: Mapped[str] = mapped_column(String(16), default=Platform.BEDROCK.value)
    status: Mapped[str] = mapped_column(String(16), default=WorkloadStatus.ACTIVE.value)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    backup_owner_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    feature: Mapped[str | None] = mapped_column(String(200))
    customer: Mapped[str | None] = mapped_column(String(200))
    critical_path: Mapped[bool] = mapped_column(default=False)
    budget_monthly: Mapped[Decimal | None] = mapped_column()
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    exit_strategy: Mapped[str | None] = mapped_column(Text)
    # {data_residency, fine_tuning, deterministic, latency_p95_ms, ...}
    constraints: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # {cloudwatch: {namespace, metric, dimensions}} or {prometheus: "query"}
    upstream_requests: Mapped[dict[str, Any] | None] = mapped_column()
    # {instance_type, count} for self-hosted fleets
    gpu: Mapped[dict[str, Any] | None] = mapped_column()
    # per-workload check thresholds that override the global ones
    thresholds: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # circuit breaker policy and state (see governance)
    breaker: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # the source key this workload was discovered from, when status == discovered
    discovered_from: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    team: Mapped[Team | None] = relationship(back_populates="workloads")
    owner: Mapped[Person | None] = relationship(foreign_keys=[owner_id])
    backup_owner: Mapped[Person | None] = relationship(foreign_keys=[backup_owner_id])
    rules: Mapped[list[AttributionRule]] = relationship(
        back_populates="workload",
        cascade="all, delete-orphan",
        order_by="AttributionRule.priority",
    )


class AttributionRule(Base):
    """One `match` entry of a workload. Lower priority numbers win when rules overlap."""

    __tablename__ = "attribution_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    workload_id: Mapped[int] = mapped_column(ForeignKey("workloads.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    # e.g. {"key": "llm-workload", "value": "search"} or {"model_id": "...", "account": "..."}
    match: Mapped[dict[str, Any]] = mapped_column()
    priority: Mapped[int] = mapped_column(default=100)

    workload: Mapped[Workload] = relationship(back_populates="rules")

    __table_args__ = (Index("ix_attribution_rules_kind", "kind"),)


class OrganisationProfile(Base):
    """A single row: what the organisation is, for the economics of self-hosting."""

    __tablename__ = "organisation"

    id: Mapped[int] = mapped_column(primary_key=True, default=1)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    ml_infrastructure: Mapped[bool] = mapped_column(default=False)
    people_cost_per_year: Mapped[Decimal] = mapped_column(default=Decimal("180000"))
    # any further organisation settings from the registry file, kept verbatim
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)


class SourceSetting(Base):
    """The registry file's `sources` section, one row per source (aws, prometheus, ...)."""

    __tablename__ = "source_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)


class AuditEvent(Base):
    """Who changed what, when, from what to what; refusals are recorded too."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))  # Slack user id, "registry:<file>", "system"
    action: Mapped[str] = mapped_column(String(64))  # e.g. owner.assign, budget.set, rules.set
    entity: Mapped[str] = mapped_column(String(32))  # workload, team, person, ...
    entity_key: Mapped[str] = mapped_column(String(200))  # slug or id
    before: Mapped[Any | None] = mapped_column(JSON)
    after: Mapped[Any | None] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(16), default="applied")  # applied | refused
    reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_audit_events_entity", "entity", "entity_key"),)


__all__ = [
    "AttributionRule",
    "AuditEvent",
    "OrganisationProfile",
    "Person",
    "Platform",
    "RuleKind",
    "SourceSetting",
    "Team",
    "Workload",
    "WorkloadStatus",
]

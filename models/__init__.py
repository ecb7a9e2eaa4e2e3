"""SQLAlchemy models, the engine/session factory and the queries that feed the numpy core.

Importing this package registers every table on `Base.metadata` (Alembic relies on it).
"""

from llmgov.models.base import (
    Base,
    SchemaNotReady,
    database_url,
    make_engine,
    make_session_factory,
    require_schema,
    transaction,
    utcnow,
)
from llmgov.models.dm_channels import DmChannel
from llmgov.models.facts import (
    ApiCallLog,
    CostFact,
    GpuFact,
    Price,
    SourceStatus,
    UpstreamFact,
    UsageFact,
)
from llmgov.models.governance import (
    Alert,
    AlertStatus,
    DecisionRecord,
    JobLease,
    OutboxMessage,
    OutboxStatus,
)
from llmgov.models.registry import (
    AttributionRule,
    AuditEvent,
    OrganisationProfile,
    Person,
    Platform,
    RuleKind,
    SourceSetting,
    Team,
    Workload,
    WorkloadStatus,
)
from llmgov.models.replay import PendingAnswer, SeenRequest

__all__ = [
    "Alert",
    "AlertStatus",
    "ApiCallLog",
    "AttributionRule",
    "AuditEvent",
    "Base",
    "CostFact",
    "DecisionRecord",
    "DmChannel",
    "GpuFact",
    "JobLease",
    "OrganisationProfile",
    "OutboxMessage",
    "OutboxStatus",
    "PendingAnswer",
    "Person",
    "Platform",
    "Price",
    "RuleKind",
    "SchemaNotReady",
    "SeenRequest",
    "SourceSetting",
    "SourceStatus",
    "Team",
    "UpstreamFact",
    "UsageFact",
    "Workload",
    "WorkloadStatus",
    "database_url",
    "make_engine",
    "make_session_factory",
    "require_schema",
    "transaction",
    "utcnow",
]

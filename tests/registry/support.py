"""Helpers for the registry-as-code tests: a small valid registry, import/export, snapshots."""

from __future__ import annotations

from sqlalchemy import func, select

from llmgov.governance.registry_file import (
    ImportPlan,
    export_registry_text,
    import_registry,
    parse_registry,
)
from llmgov.models.base import transaction
from llmgov.models.registry import (
    AttributionRule,
    AuditEvent,
    OrganisationProfile,
    Person,
    SourceSetting,
    Team,
    Workload,
)

BASE_REGISTRY = """\
organisation:
  currency: USD
  ml_infrastructure: false
  people_cost_per_year: 180000
sources:
  aws:
    regions: [us-east-1, eu-west-1]
    cost_allocation_tag: llm-workload
  prometheus: {url: "http://prometheus:9090"}
teams:
  - {slug: search, name: Search, channel: C0SEARCH01}
  - {slug: support, name: Support}
people:
  - {slack_id: U0ANA0001, email: ana@example.com, name: Ana Silva}
  - {slack_id: U0BOB0002, email: bob@example.com, name: Bob Stone}
workloads:
  - slug: search-summaries
    name: Search result summaries
    platform: bedrock
    team: search
    owner: U0ANA0001
    backup_owner: bo@example.com
    feature: result-summaries
    customer: all
    critical_path: true
    budget: {monthly: 4000}
    exit_strategy: "Prompts are model-agnostic"
    constraints: {data_residency: eu, fine_tuning: false, latency_p95_ms: 800}
    upstream_requests:
      cloudwatch: {namespace: AWS/ApplicationELB, metric: RequestCount,
                   dimensions: {LoadBalancer: app/search/0123456789abcdef}}
    match:
      - {tag: {llm-workload: search-summaries}}
      - {inference_profile: "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/a1b2c3"}
      - {model_id: "anthropic.claude-3-haiku-20240307-v1:0", account: "111122223333"}
      - {iam_principal: "arn:aws:iam::111122223333:role/search-summarizer"}
  - slug: support-llama
    platform: self_hosted
    team: support
    owner: bob@example.com
    gpu: {instance_type: g6.12xlarge, count: 2}
    match:
      - {instance: i-0abc1234def567890}
      - {prometheus: '{job="vllm", model_name="llama-3.1-8b"}'}
  - slug: ticket-triage
    platform: bedrock
    team: support
    match:
      - {model_id: "meta.llama3-1-8b-instruct-v1:0", account: "111122223333", region: us-east-1}
  - slug: fraud-scoring
    platform: sagemaker
    status: experiment
    budget: {monthly: 250.5, currency: EUR}
    match:
      - {endpoint: fraud-llama-endpoint}
"""


def import_text(
    session_factory, text: str, *, filename: str = "registry.yaml", dry_run: bool = False
) -> ImportPlan:
    """Parse and import `text` in one transaction, as the CLI does."""
    registry = parse_registry(text, filename)
    with transaction(session_factory) as session:
        return import_registry(session, registry, dry_run=dry_run)


def export_text(session_factory) -> str:
    with transaction(session_factory) as session:
        return export_registry_text(session)


def snapshot(session_factory) -> tuple:
    """Everything an import could write, to compare before and after."""
    with transaction(session_factory) as session:
        counts = tuple(
            session.scalar(select(func.count()).select_from(model))
            for model in (
                Team,
                Person,
                Workload,
                AttributionRule,
                OrganisationProfile,
                SourceSetting,
                AuditEvent,
            )
        )
        return counts, export_registry_text(session)


def audit_events(session_factory) -> list[AuditEvent]:
    with transaction(session_factory) as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))

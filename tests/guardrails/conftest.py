"""Fixtures for the circuit breaker: a small registry, moto for IAM and SSM, helpers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto import mock_aws
from sqlalchemy import select
from sqlalchemy.orm import Session

from llmgov.governance.findings import Finding
from llmgov.models.registry import AuditEvent, Person, Team, Workload

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
ROLE = "search-summarizer"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"
PROFILE_ARN = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:application-inference-profile/a1b2c3"
PARAMETER = "/llmgov/support-llama/enabled"

OWNER = "U0OWNER01"
BACKUP = "U0BACKUP1"
MEMBER = "U0MEMBER1"  # owns another workload of the same team: no rights on these
STRANGER = "U0STRANGE"
ADMIN = "U0ADMIN01"
ADMINS = frozenset({ADMIN})

BEDROCK = "search-summaries"
SELF_HOSTED = "support-llama"
NOW = datetime(2026, 3, 17, 10, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Breakers:
    bedrock: str = BEDROCK
    self_hosted: str = SELF_HOSTED


def build_registry(
    session: Session,
    *,
    bedrock_breaker: dict[str, Any] | None = None,
    self_hosted_breaker: dict[str, Any] | None = None,
) -> Breakers:
    """One team; a Bedrock workload (owner + backup) and a self-hosted one, each with a breaker.

    The Bedrock breaker uses the legacy inline mechanism unless `bedrock_breaker` names a
    `mechanism`: most tests read the deny back as an inline policy. The managed default is
    tested in test_managed.py and end to end in test_end_to_end.py."""
    if bedrock_breaker is not None and bedrock_breaker.get("principal"):
        bedrock_breaker = {"mechanism": "inline", **bedrock_breaker}
    team = Team(slug="search", name="Search")
    people = {
        sid: Person(slack_id=sid, name=name)
        for sid, name in [
            (OWNER, "Olivia Owner"),
            (BACKUP, "Ben Backup"),
            (MEMBER, "Mia Member"),
            (STRANGER, "Sam Stranger"),
            (ADMIN, "Ada Admin"),
        ]
    }
    session.add(team)
    session.add_all(people.values())
    session.add_all(
        [
            Workload(
                slug=BEDROCK,
                name="Search result summaries",
                platform="bedrock",
                team=team,
                owner=people[OWNER],
                backup_owner=people[BACKUP],
                budget_monthly=Decimal("4000"),
                breaker=(
                    {"enabled": True, "principal": ROLE_ARN, "mechanism": "inline"}
                    if bedrock_breaker is None
                    else bedrock_breaker
                ),
            ),
            Workload(
                slug=SELF_HOSTED,
                name="Support assistant",
                platform="self_hosted",
                team=team,
                owner=people[OWNER],
                backup_owner=people[BACKUP],
                budget_monthly=Decimal("9000"),
                breaker=(
                    {"enabled": True, "ssm_parameter": PARAMETER, "region": REGION}
                    if self_hosted_breaker is None
                    else self_hosted_breaker
                ),
            ),
            Workload(slug="search-embeddings", team=team, owner=people[MEMBER]),
        ]
    )
    session.commit()
    return Breakers()


BATCH_JOBS: list[dict[str, Any]] = []  # Bedrock batch inference jobs, as AWS lists them


def _list_model_invocation_jobs(self) -> str:
    status = self._get_param("statusEquals")
    jobs = [job for job in BATCH_JOBS if status in (None, job["status"])]
    return json.dumps({"invocationJobSummaries": jobs}, default=str)


def _stop_model_invocation_job(self) -> str:
    identifier = self._get_param("jobIdentifier")
    for job in BATCH_JOBS:
        if identifier in (job["jobArn"], job["jobArn"].rsplit("/", 1)[-1]):
            job["status"] = "Stopping"
            return json.dumps({})
    headers = {"x-amzn-ErrorType": "ResourceNotFoundException", "status": 404}
    return 404, headers, json.dumps({"message": f"{identifier} not found"})


def batch_job(name: str, role_arn: str, status: str = "InProgress") -> dict[str, Any]:
    """Add a batch inference job to the fake Bedrock (moto has no invocation jobs)."""
    job = {
        "jobArn": f"arn:aws:bedrock:{REGION}:{ACCOUNT}:model-invocation-job/{name}",
        "jobName": name,
        "modelId": "anthropic.claude-3-haiku-20240307-v1:0",
        "roleArn": role_arn,
        "status": status,
        "submitTime": "2026-03-17T09:00:00Z",
        "inputDataConfig": {"s3InputDataConfig": {"s3Uri": "s3://in/"}},
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://out/"}},
    }
    BATCH_JOBS.append(job)
    return job


@pytest.fixture
def aws(monkeypatch) -> Iterator[None]:
    """Fresh, empty moto IAM/SSM for each test; no real credentials, no network.

    moto 5 has no Bedrock batch inference jobs: the two calls the breaker makes are added to
    moto's Bedrock handler here, over the in-process list BATCH_JOBS."""
    from moto.bedrock.responses import BedrockResponse

    BATCH_JOBS.clear()
    monkeypatch.setattr(
        BedrockResponse, "list_model_invocation_jobs", _list_model_invocation_jobs, raising=False
    )
    monkeypatch.setattr(
        BedrockResponse, "stop_model_invocation_job", _stop_model_invocation_job, raising=False
    )
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL_SSM"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    with mock_aws():
        boto3.client("iam").create_role(
            RoleName=ROLE,
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )
        yield


@pytest.fixture
def registry(session, aws) -> Breakers:
    return build_registry(session)


def attached_policies(role: str = ROLE) -> list[str]:
    found = boto3.client("iam").list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    return [policy["PolicyArn"] for policy in found]


def inline_policies(role: str = ROLE) -> list[str]:
    return boto3.client("iam").list_role_policies(RoleName=role)["PolicyNames"]


def parameter_value(name: str = PARAMETER) -> str | None:
    ssm = boto3.client("ssm", region_name=REGION)
    try:
        return ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None


def audit_events(session: Session, action: str | None = None) -> list[AuditEvent]:
    session.expire_all()
    query = select(AuditEvent).order_by(AuditEvent.id)
    if action:
        query = query.where(AuditEvent.action == action)
    return list(session.scalars(query))


def breaker_of(session: Session, slug: str) -> dict[str, Any]:
    session.expire_all()
    return dict(session.scalar(select(Workload.breaker).where(Workload.slug == slug)) or {})


def overrun(slug: str = BEDROCK, pct: float = 180.0, budget: float = 4000.0) -> Finding:
    """A `budget_projected_overrun` finding as the governance checks produce it."""
    return Finding(
        kind="budget_projected_overrun",
        severity="critical",
        workload=slug,
        owner=OWNER,
        team="search",
        amount=Decimal(str(budget * (pct - 100) / 100)),
        currency="USD",
        message=f"{slug} is projected to end the month at {pct:.0f}% of its budget",
        # the keys governance.checks.check_budgets puts in its details
        details={
            "budget": Decimal(str(budget)),
            "projected_month_end": Decimal(str(budget * pct / 100)),
            "projected_low": Decimal(str(budget * pct / 110)),
            "projected_high": Decimal(str(budget * pct / 90)),
        },
    )


def retry_storm(slug: str = BEDROCK, minutes: float = 45.0) -> Finding:
    return Finding(
        kind="retry_storm",
        severity="critical",
        workload=slug,
        owner=OWNER,
        team="search",
        amount=Decimal("120"),
        currency="USD",
        message=f"{slug}: invocations at 5x baseline with 40% throttled",
        details={"duration_minutes": minutes},
    )


def approved_reset(session_factory, slug: str = BEDROCK, *, now=NOW, clients=None, **_):
    """Reset as the two-person rule wants it: the owner asks, with a reason; an admin approves.

    When the breaker is not tripped, the request is answered "unchanged" and so is this."""
    from llmgov.guardrails import actions

    asked = actions.request_reset(
        session_factory, slug, actor=OWNER, admins=ADMINS, now=now, reason="spend explained"
    )
    if asked.result.value != "applied":
        return asked
    return actions.reset(
        session_factory, slug, actor=ADMIN, admins=ADMINS, now=now, clients=clients
    )

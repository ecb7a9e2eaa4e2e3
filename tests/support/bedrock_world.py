"""A small Bedrock world for the early-warning tests and the time-to-owner benchmark.

`seed_registry` writes an organisation, a team with a channel, an owner, workloads with a
budget, the `aws` source, and a week of hourly usage facts per model (what the hourly
collector and its attribution pass would have left) as the baseline. `MinutePublisher`
puts per-minute `AWS/Bedrock` datapoints into CloudWatch (moto) as Bedrock would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from llmgov.models.base import transaction
from llmgov.models.facts import UsageFact
from llmgov.models.registry import OrganisationProfile, Person, SourceSetting, Team, Workload
from llmgov.models.series_keys import series_key

ACCOUNT = "123456789012"  # moto's account
REGION = "us-east-1"
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
TOKENS_IN, TOKENS_OUT = 800.0, 200.0  # per call


@dataclass(frozen=True)
class Seeded:
    owner: str  # Slack id
    channel: str  # the team's channel
    workloads: dict[str, int]  # slug -> id
    models: dict[str, str]  # slug -> ModelId (one model per workload)


def model_for(index: int) -> str:
    """A distinct ModelId per workload: application inference profile ids (12 characters)."""
    return f"{index:012d}"[-12:].replace("0", "a")


def seed_registry(
    session_factory: sessionmaker[Session],
    now: datetime,
    *,
    workloads: int = 1,
    calls_per_minute: float = 30.0,
    budget: Decimal = Decimal("50000"),
) -> Seeded:
    hour0 = now.replace(minute=0, second=0, microsecond=0)
    slugs: dict[str, int] = {}
    models: dict[str, str] = {}
    with transaction(session_factory) as session:
        session.add(OrganisationProfile(id=1, currency="USD", extra={}))
        session.add(SourceSetting(name="aws", config={"regions": [REGION]}))
        team = Team(slug="search", name="Search", channel_id="C0SEARCH01")
        owner = Person(slack_id="U0OWNER01", name="Ada Owner", active=True)
        session.add_all([team, owner])
        session.flush()
        for index in range(workloads):
            slug = f"agent-{index:04d}"
            workload = Workload(
                slug=slug,
                name=slug,
                platform="bedrock",
                status="active",
                exit_strategy="prompts are model-agnostic",
                constraints={},
                thresholds={},
                breaker={},
                owner_id=owner.id,
                team_id=team.id,
                budget_monthly=budget,
            )
            session.add(workload)
            session.flush()
            slugs[slug] = workload.id
            models[slug] = model_for(index + 1)
            key = series_key("bedrock", ACCOUNT, REGION, models[slug])
            for back in range(1, 8 * 24 + 1):  # 8 days of hours before this one
                hour = hour0 - timedelta(hours=back)
                calls = calls_per_minute * 60
                session.add(
                    UsageFact(
                        source="bedrock_cloudwatch",
                        series_key=key,
                        hour=hour,
                        account=ACCOUNT,
                        region=REGION,
                        model_id=models[slug],
                        invocations=calls,
                        input_tokens=calls * TOKENS_IN,
                        output_tokens=calls * TOKENS_OUT,
                        client_errors=calls * 0.01,
                        throttles=0.0,
                        estimated_cost=Decimal(str(round(calls * 0.0005, 4))),
                        workload_id=workload.id,
                        dimensions={},
                        collected_at=hour + timedelta(hours=1),
                    )
                )
    return Seeded("U0OWNER01", "C0SEARCH01", slugs, models)


class MinutePublisher:
    """Per-minute AWS/Bedrock datapoints for one model into a CloudWatch client (moto)."""

    def __init__(self, cloudwatch: Any) -> None:
        self.cloudwatch = cloudwatch

    def minute(
        self,
        model_id: str,
        minute: datetime,
        *,
        calls: float,
        client_errors: float = 0.0,
        throttles: float = 0.0,
    ) -> None:
        ok = max(calls - client_errors, 0.0)
        values = {
            "Invocations": calls,
            "InputTokenCount": ok * TOKENS_IN,
            "OutputTokenCount": ok * TOKENS_OUT,
            "InvocationClientErrors": client_errors,
            "InvocationServerErrors": 0.0,
            "InvocationThrottles": throttles,
        }
        self.cloudwatch.put_metric_data(
            Namespace="AWS/Bedrock",
            MetricData=[
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": "ModelId", "Value": model_id}],
                    "Timestamp": minute,
                    "Value": value,
                }
                for name, value in values.items()
            ],
        )

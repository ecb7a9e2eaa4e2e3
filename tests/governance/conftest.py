"""Helpers for the governance tests: a small registry and hand-built facts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from llmgov.models.facts import CostFact, GpuFact, SourceStatus, UsageFact
from llmgov.models.registry import OrganisationProfile, Person, Team, Workload


class Registry:
    """Builds registry rows and facts in one session (flushed, not committed)."""

    def __init__(self, session):
        self.session = session
        self.session.add(OrganisationProfile(id=1, currency="USD", extra={}))
        self.session.flush()

    def team(self, slug: str, channel: str | None = None) -> Team:
        team = Team(slug=slug, name=slug.title(), channel_id=channel)
        self.session.add(team)
        self.session.flush()
        return team

    def person(self, slack_id: str, name: str, active: bool = True, tz: str | None = None):
        person = Person(slack_id=slack_id, name=name, active=active, tz=tz)
        self.session.add(person)
        self.session.flush()
        return person

    def workload(self, slug: str, **fields) -> Workload:
        fields.setdefault("platform", "bedrock")
        fields.setdefault("status", "active")
        fields.setdefault("exit_strategy", "prompts are model-agnostic")
        fields.setdefault("constraints", {})
        fields.setdefault("thresholds", {})
        fields.setdefault("breaker", {})
        workload = Workload(slug=slug, name=slug.replace("-", " ").title(), **fields)
        self.session.add(workload)
        self.session.flush()
        return workload

    def daily_cost(self, workload: Workload | None, day: date, cost, key: str | None = None):
        """One billed day (Cost Explorer style); `workload` None is unattributed spend."""
        series = key or (f"ce|{workload.slug}" if workload else "ce|unknown")
        self.session.add(
            CostFact(
                source="cost_explorer",
                series_key=series,
                day=day,
                cost=Decimal(str(cost)),
                currency="USD",
                is_llm=True,
                workload_id=workload.id if workload else None,
                dimensions={},
                collected_at=datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC),
            )
        )

    def costs(self, workload: Workload | None, first: date, amounts, key: str | None = None):
        for offset, amount in enumerate(amounts):
            self.daily_cost(workload, first + timedelta(days=offset), amount, key)
        self.session.flush()

    def usage(self, workload: Workload, hour: datetime, **values):
        values.setdefault("invocations", 100.0)
        values.setdefault("input_tokens", 1000.0)
        values.setdefault("output_tokens", 200.0)
        self.session.add(
            UsageFact(
                source="bedrock_cloudwatch",
                series_key=f"cw|{workload.slug}",
                hour=hour,
                model_id="anthropic.claude-3-haiku-20240307-v1:0",
                workload_id=workload.id,
                dimensions={},
                collected_at=hour + timedelta(hours=1),
                **values,
            )
        )

    def gpu(self, workload: Workload, hour: datetime, utilisation: float, instance="g6.xlarge"):
        self.session.add(
            GpuFact(
                source="cwagent",
                series_key=f"gpu|{workload.slug}",
                hour=hour,
                resource_id=f"i-{workload.slug}",
                instance_type=instance,
                gpu_count=1,
                utilisation_pct=utilisation,
                workload_id=workload.id,
                dimensions={},
                collected_at=hour + timedelta(hours=1),
            )
        )

    def source(self, source: str, last_success: datetime | None, scope: str = "*", error=None):
        self.session.add(
            SourceStatus(
                source=source,
                scope=scope,
                last_success_at=last_success,
                last_error_at=datetime(2026, 1, 1, tzinfo=UTC) if error else None,
                last_error=error,
            )
        )
        self.session.flush()


@pytest.fixture
def registry(session) -> Registry:
    return Registry(session)

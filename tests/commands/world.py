"""A small, fully known organisation for the command tests.

Everything is deterministic so tests can compute expectations by hand:
- "today" (AS_OF) is 2026-11-20; billing (cost facts) runs through 2026-11-18 (two days of lag);
- hourly usage covers the last 70 days (by default) for the two Bedrock workloads, and its
  token-based estimate runs 5% above the bill;
- unattributed LLM spend is 5 a day; 7 a day of non-LLM spend is unattributed and must not
  count anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from llmgov.models.facts import CostFact, Price, UsageFact
from llmgov.models.governance import Alert
from llmgov.models.registry import OrganisationProfile, Person, Team, Workload

AS_OF = date(2026, 11, 20)
# A few On-Demand prices (us-east-1, June 2025 AWS pricing page, as in collectors/data).
GPU_PRICES = {"g6.xlarge": "0.8048", "g6.12xlarge": "4.6016", "g5.xlarge": "1.006"}
BILLED_THROUGH = date(2026, 11, 18)
HISTORY_DAYS = 120
USAGE_DAYS = 70
DRIFT = Decimal("1.05")


def at(day: date, hour: int = 0) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def daily_cost(slug: str, day: date) -> Decimal:
    """The billed cost of a workload on a day (the hand-checkable truth)."""
    i = (day - (AS_OF - timedelta(days=HISTORY_DAYS))).days
    if slug == "search-summaries":
        return Decimal("100.00") + Decimal(i) * Decimal("0.50")  # growing
    if slug == "search-rerank":
        return Decimal("50.00")
    if slug == "support-llama":
        return Decimal("60.00")
    if slug == "orphan-batch":
        return Decimal("10.00")
    if slug == "<unattributed>":
        return Decimal("5.00")
    raise KeyError(slug)


# Tokens at Claude 3 Haiku list prices ($0.25 / $1.25 per million input / output tokens) with
# 80% input: $0.45 per million, so a dollar buys 1e6 / 0.45 tokens. 1 request per 1,000 tokens.
PRICE_INPUT, PRICE_OUTPUT, INPUT_SHARE = 0.25, 1.25, 0.8
TOKENS_PER_DOLLAR = 1e6 / (INPUT_SHARE * PRICE_INPUT + (1 - INPUT_SHARE) * PRICE_OUTPUT)


@dataclass
class World:
    workloads: dict[str, Workload]
    people: dict[str, Person]
    teams: dict[str, Team]


def build_world(session: Session, *, usage_days: int = USAGE_DAYS) -> World:
    session.add(
        OrganisationProfile(
            id=1, currency="USD", ml_infrastructure=False, people_cost_per_year=Decimal(180000)
        )
    )
    teams = {
        "search": Team(slug="search", name="Search", channel_id="C0SEARCH01"),
        "support": Team(slug="support", name="Support"),
    }
    people = {
        "ana": Person(slack_id="U0ANA0001", email="ana@example.com", name="Ana Silva"),
        "bo": Person(slack_id="U0BO00002", email="bo@example.com", name="Bo Chen"),
        "cy": Person(slack_id="U0CY00003", email="cy@example.com", name="Cy Left", active=False),
    }
    session.add_all([*teams.values(), *people.values()])
    session.flush()
    workloads = {
        "search-summaries": Workload(
            slug="search-summaries",
            name="Search result summaries",
            platform="bedrock",
            team=teams["search"],
            owner=people["ana"],
            backup_owner=people["bo"],
            feature="result-summaries",
            customer="all",
            critical_path=True,
            budget_monthly=Decimal(3000),
            exit_strategy="Prompts are model-agnostic; Llama 3.1 8B on g6.xlarge evaluated",
            constraints={"latency_p95_ms": 800, "data_residency": "eu"},
        ),
        "search-rerank": Workload(
            slug="search-rerank",
            name="Re-ranking",
            platform="bedrock",
            team=teams["search"],
            owner=people["bo"],
            feature="ranking",
            customer="acme",
            constraints={},
        ),
        "support-llama": Workload(
            slug="support-llama",
            platform="self_hosted",
            team=teams["support"],
            owner=people["cy"],
            budget_monthly=Decimal(2000),
            exit_strategy="Bedrock Llama 3.1 8B is a drop-in",
            gpu={"instance_type": "g6.12xlarge", "count": 2},
            constraints={},
        ),
        "orphan-batch": Workload(
            slug="orphan-batch",
            platform="bedrock",
            status="discovered",
            discovered_from="tag:llm-workload=orphan-batch",
            constraints={},
        ),
    }
    session.add_all(workloads.values())
    session.flush()

    start = AS_OF - timedelta(days=HISTORY_DAYS)
    day = start
    while day <= BILLED_THROUGH:
        for slug, workload in [*workloads.items(), ("<unattributed>", None)]:
            session.add(
                CostFact(
                    source="cost_explorer",
                    series_key=f"{slug}",
                    day=day,
                    cost=daily_cost(slug, day),
                    workload_id=workload.id if workload else None,
                    collected_at=at(day + timedelta(days=2), 6),
                )
            )
        session.add(  # non-LLM cloud spend, never counted
            CostFact(
                source="cost_explorer",
                series_key="ec2-other",
                day=day,
                cost=Decimal(7),
                is_llm=False,
                collected_at=at(day + timedelta(days=2), 6),
            )
        )
        day += timedelta(days=1)

    if usage_days:
        for slug in ("search-summaries", "search-rerank"):
            for offset in range(usage_days):
                day = AS_OF - timedelta(days=offset)
                cost = daily_cost(slug, day)
                tokens = float(cost) * TOKENS_PER_DOLLAR / 24
                for hour in range(24):
                    session.add(
                        UsageFact(
                            source="bedrock_cloudwatch",
                            series_key=slug,
                            hour=at(day, hour),
                            model_id="anthropic.claude-3-haiku-20240307-v1:0",
                            invocations=tokens / 1000,
                            input_tokens=tokens * INPUT_SHARE,
                            output_tokens=tokens * (1 - INPUT_SHARE),
                            client_errors=1.0,
                            throttles=0.0,
                            latency_ms_p95=650.0,
                            estimated_cost=(cost * DRIFT / 24).quantize(Decimal("0.00000001")),
                            workload_id=workloads[slug].id,
                            collected_at=at(day, hour) + timedelta(hours=1),
                        )
                    )
    session.add_all(
        [
            Alert(
                fingerprint="a1",
                kind="budget_projected_overrun",
                severity="warning",
                workload_id=workloads["search-summaries"].id,
                amount=Decimal("412.50"),
                message="search-summaries is projected to end the month at $3,412 of $3,000",
                first_seen_at=at(AS_OF - timedelta(days=3)),
            ),
            Alert(
                fingerprint="a2",
                kind="spend_anomaly",
                severity="critical",
                status="resolved",
                workload_id=workloads["search-summaries"].id,
                amount=Decimal(90),
                message="resolved long ago",
                first_seen_at=at(AS_OF - timedelta(days=40)),
                resolved_at=at(AS_OF - timedelta(days=35)),
            ),
            Alert(
                fingerprint="a3",
                kind="unattributed_spend",
                severity="info",
                workload_id=None,
                amount=Decimal(150),
                message="$150 this month matches no workload",
                first_seen_at=at(AS_OF - timedelta(days=10)),
            ),
        ]
    )
    session.add_all(
        [
            Price(
                kind="token",
                key="anthropic.claude-3-haiku-20240307-v1:0",
                unit="per_mtok_input",
                amount=Decimal("0.25"),
                source="bundled",
                as_of=date(2026, 11, 1),
            ),
            Price(
                kind="token",
                key="anthropic.claude-3-haiku-20240307-v1:0",
                unit="per_mtok_output",
                amount=Decimal("1.25"),
                source="bundled",
                as_of=date(2026, 11, 1),
            ),
            *(
                Price(
                    kind="gpu_hour",
                    key=instance_type,
                    region="us-east-1",
                    unit="per_hour",
                    amount=Decimal(amount),
                    source="aws-pricing-page",
                    as_of=date(2025, 6, 30),
                )
                for instance_type, amount in GPU_PRICES.items()
            ),
        ]
    )
    session.commit()
    return World(workloads=workloads, people=people, teams=teams)

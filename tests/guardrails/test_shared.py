"""Finding 4: a role shared by several workloads. The registry import flags it; a trip on it
names every workload it stops and changes their state (and cards) too."""

from __future__ import annotations

from decimal import Decimal

from llmgov.bot.blocks.breaker import breaker_message
from llmgov.governance.registry_file import import_registry, parse_registry
from llmgov.guardrails import actions
from llmgov.guardrails.card import load_card
from llmgov.models.registry import Workload
from tests.guardrails.conftest import (
    ADMINS,
    BEDROCK,
    NOW,
    OWNER,
    ROLE_ARN,
    approved_reset,
    audit_events,
    breaker_of,
    build_registry,
)

RERANK = "search-rerank"


def test_the_registry_import_flags_a_principal_shared_by_several_workloads(session):
    text = f"""
teams:
  - {{slug: search, name: Search}}
workloads:
  - {{slug: search-summaries, team: search, breaker: {{principal: "{ROLE_ARN}"}}}}
  - {{slug: search-rerank, team: search, breaker: {{principal: "{ROLE_ARN}"}}}}
  - {{slug: search-embeddings, team: search}}
"""
    plan = import_registry(session, parse_registry(text), dry_run=True)
    (note,) = plan.notes
    assert "search-rerank, search-summaries" in note and ROLE_ARN in note
    assert f"Note: the breakers of search-rerank, search-summaries all deny {ROLE_ARN}" in (
        plan.render()
    )


def test_a_trip_on_a_shared_role_names_and_marks_every_workload_it_stops(
    session, session_factory, aws
):
    build_registry(session)
    team = session.query(Workload).filter_by(slug=BEDROCK).one().team
    session.add(
        Workload(
            slug=RERANK,
            team=team,
            budget_monthly=Decimal("500"),
            breaker={"enabled": True, "principal": ROLE_ARN, "mechanism": "inline"},
        )
    )
    session.commit()

    outcome = actions.trip(session_factory, BEDROCK, actor=OWNER, admins=ADMINS, now=NOW)

    assert outcome.ok, outcome.message
    assert outcome.also == (RERANK,)
    assert f"also stops {RERANK}" in outcome.message
    assert breaker_of(session, RERANK)["state"]["stopped_by"] == BEDROCK
    card = str(breaker_message(load_card(session_factory, RERANK, NOW)).to_dict())
    assert f"the breaker of *{BEDROCK}* was tripped" in card
    assert [e.entity_key for e in audit_events(session, "breaker.shared_stop")] == [RERANK]

    outcome = approved_reset(session_factory)
    assert outcome.ok and outcome.also == (RERANK,)
    assert "stopped_by" not in breaker_of(session, RERANK)["state"]

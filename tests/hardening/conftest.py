"""Fixtures for the hardening suite: a small registry with every role, settings pointing at
the mock Slack Web API, and the real WSGI app (bot/server.py) under waitress on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from llmgov.bot.app import build_app
from llmgov.bot.listeners.deps import CONTEXT_KEY, AppDeps
from llmgov.bot.server import WAITRESS_OPTIONS, create_web_app, database_check
from llmgov.bot.settings import Settings
from llmgov.models.registry import AttributionRule, Person, Team, Workload
from tests.hardening.support import (
    APP_TOKEN,
    BOT_TOKEN,
    SIGNING_SECRET,
    TEAM_ID,
    LiveServer,
    serve_in_thread,
)

# The five roles of the authorisation matrix, and someone to hand workloads to.
OWNER = "U0HOWNER01"
BACKUP = "U0HBACKUP1"
MEMBER = "U0HMEMBER1"  # owns another workload of the same team: no rights on this one
STRANGER = "U0HSTRANG1"
ADMIN = "U0HADMIN01"
NEWBIE = "U0HNEWBIE1"
ROLES = {"owner": OWNER, "backup": BACKUP, "member": MEMBER, "stranger": STRANGER, "admin": ADMIN}

ROLE_ARN = "arn:aws:iam::111122223333:role/search-summarizer"


@dataclass(frozen=True)
class World:
    owned: str = "search-summaries"  # owner + backup, budget, a dry-run breaker, one rule
    unowned: str = "query-rewrite"  # no owner: anyone may claim it
    members: str = "search-embeddings"  # MEMBER's own workload


def build_world(session: Session) -> World:
    world = World()
    team = Team(slug="search", name="Search", channel_id="C0SEARCH01")
    people = {
        sid: Person(slack_id=sid, name=name)
        for sid, name in [
            (OWNER, "Olivia Owner"),
            (BACKUP, "Ben Backup"),
            (MEMBER, "Mia Member"),
            (STRANGER, "Sam Stranger"),
            (ADMIN, "Ada Admin"),
            (NEWBIE, "Nina Newbie"),
        ]
    }
    owned = Workload(
        slug=world.owned,
        name="Search result summaries",
        platform="bedrock",
        team=team,
        owner=people[OWNER],
        backup_owner=people[BACKUP],
        budget_monthly=Decimal("4000"),
        exit_strategy="Prompts are model-agnostic",
        # enabled: false = dry run: Trip records what it would do and never touches AWS
        breaker={"enabled": False, "principal": ROLE_ARN, "projected_over_budget_pct": 150},
    )
    session.add_all([team, *people.values(), owned])
    session.add_all(
        [
            Workload(slug=world.unowned, name="Query rewrite", team=team),
            Workload(slug=world.members, name="Embeddings", team=team, owner=people[MEMBER]),
            AttributionRule(
                workload=owned, kind="tag", match={"key": "llm-workload", "value": world.owned}
            ),
        ]
    )
    session.commit()
    return world


@pytest.fixture
def world(session) -> World:
    return build_world(session)


@pytest.fixture
def settings(slack_mock, database_url) -> Settings:
    return Settings(
        database_url=database_url,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_app_token=APP_TOKEN,
        slack_api_url=slack_mock.url,
        admins=frozenset({ADMIN}),
    )


@pytest.fixture
def deps(settings, session_factory) -> AppDeps:
    return AppDeps.build(settings, session_factory)


@pytest.fixture
def context(deps) -> dict:
    """What Bolt hands a listener as `context`, as far as our listeners read it."""
    return {CONTEXT_KEY: deps}


@pytest.fixture
def bolt_app(settings, session_factory, answers):
    app = build_app(settings, session_factory, token_verification_enabled=False, answers=answers)
    yield app
    # listeners still running after their ack, then the answers they handed on, finish
    # before the database is emptied
    app.listener_runner.listener_executor.shutdown(wait=True)
    answers.shutdown(wait=True)


@pytest.fixture
def live_server(bolt_app, session_factory, slack_mock) -> Iterator[LiveServer]:
    """bot/server.py's Flask app, served by waitress with the options `llmgov serve` uses, on
    loopback."""
    web = create_web_app(bolt_app, health_checks=(database_check(session_factory),))
    with serve_in_thread(web, **WAITRESS_OPTIONS) as url:
        yield LiveServer(url=url, response_url=slack_mock.response_url + f"{TEAM_ID}/1/abc")

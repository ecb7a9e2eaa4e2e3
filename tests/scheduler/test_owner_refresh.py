"""The daily owner refresh against the mock Slack: users.info, users.lookupByEmail, misses
remembered, deactivation, pacing and 429s, on a controlled clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk import WebClient
from sqlalchemy import select

from llmgov.bot.jobs import JobContext, run_job
from llmgov.bot.owner_refresh import refresh_owners
from llmgov.bot.pacing import Pacer, SlackLimits
from llmgov.bot.settings import Settings
from llmgov.governance.owners import people_to_refresh
from llmgov.models.base import transaction
from llmgov.models.registry import AuditEvent, Person, Workload
from tests.support.clock import FakeClock
from tests.support.slack_mock import Fault

T0 = datetime(2026, 3, 2, 5, 30, tzinfo=UTC)


@pytest.fixture
def client(slack_mock) -> WebClient:
    return WebClient(token="xoxb-test", base_url=slack_mock.url, timeout=2)


@pytest.fixture
def people(session_factory, slack_mock):
    slack_mock.add_user(
        "U0ANA0001", real_name="Ana Silva", tz="Asia/Tokyo", email="ana@example.com"
    )
    slack_mock.add_user("U0LEFT001", real_name="Left Co", deleted=True)
    slack_mock.add_user(
        "U0BO00001", real_name="Bo Chen", tz="America/Chicago", email="bo@example.com"
    )
    with transaction(session_factory) as session:
        ana = Person(slack_id="U0ANA0001", name="ana")
        left = Person(slack_id="U0LEFT001", name="Left Co")
        gone = Person(slack_id="U0GONE001", name="Never existed")
        bo = Person(email="bo@example.com")
        nobody = Person(email="nobody@example.com")
        ana_by_email = Person(email="ana@example.com")  # the same Ana, registered by email
        session.add_all([ana, left, gone, bo, nobody, ana_by_email])
        session.flush()
        session.add(Workload(slug="search", owner_id=ana_by_email.id, backup_owner_id=bo.id))
        session.add(Workload(slug="support", owner_id=left.id))
    return None


def person(session, **where) -> Person | None:
    column, value = next(iter(where.items()))
    return session.scalar(select(Person).where(getattr(Person, column) == value))


def test_refresh_updates_deactivates_resolves_merges_and_remembers_misses(
    session_factory, slack_mock, client, people
):
    clock = FakeClock(T0)
    report = refresh_owners(session_factory, client, T0, clock=clock, pacer=Pacer(clock))
    assert report.errors == []
    assert report.outcomes == {
        "updated": 1,  # Ana: name and tz from Slack
        "deactivated": 2,  # deleted in Slack; and a Slack id that does not exist
        "resolved": 1,  # bo@ -> U0BO00001
        "missed": 1,  # nobody@: not in Slack
        "merged": 1,  # ana@ is U0ANA0001, already known
    }
    with session_factory() as session:
        ana = person(session, slack_id="U0ANA0001")
        assert (ana.name, ana.tz, ana.active, ana.email) == (
            "Ana Silva",
            "Asia/Tokyo",
            True,
            "ana@example.com",
        )
        assert person(session, slack_id="U0LEFT001").active is False
        assert person(session, slack_id="U0GONE001").active is False
        bo = person(session, email="bo@example.com")
        assert (bo.slack_id, bo.tz) == ("U0BO00001", "America/Chicago")
        nobody = person(session, email="nobody@example.com")
        assert nobody.slack_id is None and T0 <= nobody.checked_at < T0 + timedelta(minutes=1)
        search = session.scalar(select(Workload).where(Workload.slug == "search"))
        assert search.owner_id == ana.id and search.backup_owner_id == bo.id
        assert (
            session.scalar(select(Person).where(Person.email.is_(None), Person.slack_id.is_(None)))
            is None
        )
        actions = sorted((e.action, e.entity_key) for e in session.scalars(select(AuditEvent)))
    assert ("person.deactivated", "U0LEFT001") in actions
    assert ("person.deactivated", "U0GONE001") in actions
    assert ("person.resolved", "bo@example.com") in actions
    assert ("person.merged", "U0ANA0001") in actions


def test_misses_are_retried_weekly_and_ids_daily(session_factory, slack_mock, client, people):
    clock = FakeClock(T0)
    refresh_owners(session_factory, client, T0, clock=clock, pacer=Pacer(clock))
    lookups = len(slack_mock.calls_to("users.lookupByEmail"))
    infos = len(slack_mock.calls_to("users.info"))
    tomorrow = T0 + timedelta(days=1)
    refresh_owners(session_factory, client, tomorrow, clock=clock, pacer=Pacer(clock))
    assert len(slack_mock.calls_to("users.lookupByEmail")) == lookups  # nobody@ not asked again
    assert len(slack_mock.calls_to("users.info")) > infos  # Slack ids are checked daily
    next_week = T0 + timedelta(days=7, minutes=1)
    with session_factory() as session:
        due = people_to_refresh(session, next_week)
    assert "nobody@example.com" in {t.email for t in due}


def test_a_user_who_is_reactivated_in_slack_becomes_active_again(
    session_factory, slack_mock, client, people
):
    clock = FakeClock(T0)
    refresh_owners(session_factory, client, T0, clock=clock, pacer=Pacer(clock))
    slack_mock.add_user("U0LEFT001", real_name="Left Co", deleted=False)
    report = refresh_owners(
        session_factory, client, T0 + timedelta(days=1), clock=clock, pacer=Pacer(clock)
    )
    assert report.outcomes["reactivated"] == 1
    with session_factory() as session:
        assert person(session, slack_id="U0LEFT001").active is True


def test_429_is_waited_out_and_5xx_leaves_the_person_for_next_time(
    session_factory, slack_mock, client
):
    slack_mock.add_user("U0ANA0001", real_name="Ana")
    slack_mock.add_user("U0BEN0001", real_name="Ben")
    with transaction(session_factory) as session:
        session.add_all([Person(slack_id="U0ANA0001"), Person(slack_id="U0BEN0001")])
    slack_mock.fail_next("users.info", Fault(429, retry_after=20))
    clock = FakeClock(T0)
    report = refresh_owners(session_factory, client, T0, clock=clock, pacer=Pacer(clock))
    assert report.outcomes == {"updated": 2}
    assert clock.slept >= 20  # Retry-After honoured on the virtual clock
    slack_mock.fail_next("users.info", Fault(500))
    later = T0 + timedelta(days=1)
    report = refresh_owners(session_factory, client, later, clock=clock, pacer=Pacer(clock))
    assert len(report.errors) == 1 and "HTTP 500" in report.errors[0]
    with session_factory() as session:
        checked = sorted(p.checked_at for p in session.scalars(select(Person)))
    # The failed one keeps its old check time (so it is retried next run); the other is new.
    assert checked[0] < later <= checked[1]


def test_users_info_is_paced_within_tier_4(session_factory, slack_mock, client):
    with transaction(session_factory) as session:
        for i in range(11):
            slack_mock.add_user(f"U0P{i:06d}")
            session.add(Person(slack_id=f"U0P{i:06d}"))
    clock = FakeClock(T0)
    refresh_owners(session_factory, client, T0, clock=clock, pacer=Pacer(clock, SlackLimits()))
    # 11 calls at 100/minute: 10 gaps of ~0.6 s (with a small safety margin).
    assert 6.0 <= clock.slept <= 6.5


def test_refresh_job_deactivates_an_owner_under_the_lease(session_factory, slack_mock, client):
    slack_mock.add_user("U0LEFT001", deleted=True)
    with transaction(session_factory) as session:
        session.add(Person(slack_id="U0LEFT001"))
    clock = FakeClock(T0)
    ctx = JobContext(session_factory, Settings(), client, clock=clock, holder="w1")
    result = run_job(ctx, "refresh_owners", T0)
    assert result.outcome == "success" and result.detail["outcomes"] == {"deactivated": 1}
    with session_factory() as session:
        assert person(session, slack_id="U0LEFT001").active is False

"""Two registry changes at the same moment (two people, two Slack requests, two listener
threads): both must be applied, one after the other, each audited from what the other left.

The race is made deterministic: both changes read their workload, then wait for each other
(a barrier inside `governance.permissions.authorise`, which runs right after the read),
then write. A correct implementation serialises them (a row lock taken with the read, as
`governance.ownership.lock_workload` does), so the barrier times out for one of them and the
race cannot happen.
"""

from __future__ import annotations

import contextlib
import threading
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from llmgov.commands import owner
from llmgov.governance import ownership
from llmgov.governance.registry_file import import_registry, parse_registry
from llmgov.models.base import transaction
from llmgov.models.registry import AuditEvent
from tests.hardening.conftest import ADMIN, OWNER, STRANGER

BARRIER_SECONDS = 3


@pytest.fixture
def race(monkeypatch, session_factory):
    """Run `owner.answer(...)` calls in threads that meet after reading their workload."""

    def run(*changes: tuple[str, str]) -> dict[str, Any]:
        both_read = threading.Barrier(len(changes), timeout=BARRIER_SECONDS)
        authorise = ownership.authorise

        def authorise_then_wait(*args: Any, **kwargs: Any):
            decision = authorise(*args, **kwargs)  # the workload has been read by now
            # a broken barrier: the other change was made to wait for this one, no race
            with contextlib.suppress(threading.BrokenBarrierError):
                both_read.wait()
            return decision

        monkeypatch.setattr(ownership, "authorise", authorise_then_wait)
        answers: dict[str, Any] = {}

        def change(actor: str, text: str) -> None:
            try:
                answers[text] = owner.answer(session_factory, text, actor, {ADMIN})
            except Exception as error:  # reported by the caller's assertions
                answers[text] = error

        threads = [threading.Thread(target=change, args=pair) for pair in changes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(BARRIER_SECONDS * 4)
        return answers

    return run


def test_two_people_changing_two_workloads_at_once_both_succeed(race, world):
    answers = race(
        (STRANGER, f"claim {world.unowned}"),
        (ADMIN, f"retire {world.owned}"),
    )
    assert all(isinstance(a, owner.ChangeAnswer) for a in answers.values()), answers


def test_two_changes_of_one_workload_at_once_chain_in_the_audit_trail(race, world, session):
    answers = race(
        (OWNER, f"budget {world.owned} 5000"),
        (ADMIN, f"budget {world.owned} 6000"),
    )
    assert all(isinstance(a, owner.ChangeAnswer) for a in answers.values()), answers
    session.rollback()  # a fresh read: ends the SQLite WAL snapshot
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "budget.set").order_by(AuditEvent.id)
    ).all()
    steps = [(e.before["budget_monthly"], e.after["budget_monthly"]) for e in events]
    assert len(steps) == 2 and steps[0][0] == "4000" and steps[1][0] == steps[0][1], steps


def test_a_registry_import_during_a_change_waits_and_chains_after_it(
    world, session_factory, session
):
    """The import locks the file's workloads before reading them: started while a budget
    change from Slack is still open, it waits for it, then audits from its result."""
    registry = parse_registry(
        f"workloads:\n  - slug: {world.owned}\n    budget: {{monthly: 6000}}\n", "race.yaml"
    )
    plans: list[Any] = []

    def import_file() -> None:
        try:
            with transaction(session_factory) as importing:
                plans.append(import_registry(importing, registry))
        except Exception as error:  # reported by the assertions below
            plans.append(error)

    importer = threading.Thread(target=import_file)
    with transaction(session_factory) as changing:
        ownership.set_budget(changing, OWNER, world.owned, Decimal("5000"), {ADMIN})
        importer.start()
        importer.join(BARRIER_SECONDS)  # time to read the old budget, were it not locked
    importer.join(BARRIER_SECONDS * 4)

    assert len(plans) == 1 and not isinstance(plans[0], Exception), plans
    session.rollback()  # a fresh read: ends the SQLite WAL snapshot
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "budget.set").order_by(AuditEvent.id)
    ).all()
    # one audit shape whoever made the change
    steps = [(e.actor, e.before["budget_monthly"]) for e in events]
    assert steps == [(OWNER, "4000"), ("registry:race.yaml", "5000")], steps

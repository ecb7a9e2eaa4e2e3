"""The check job's side: a breaker fires once per firing, its card goes to the owner and the
admins through the outbox, and it re-arms, stays quiet or fires again as documented."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from llmgov.bot.breaker_notify import notify_breakers, refresh_breaker_copies
from llmgov.bot.settings import Settings
from llmgov.guardrails import actions
from llmgov.models.base import transaction
from llmgov.models.governance import OutboxMessage
from llmgov.models.registry import Person, Workload
from tests.guardrails.conftest import (
    ADMIN,
    ADMINS,
    BACKUP,
    BEDROCK,
    NOW,
    OWNER,
    SELF_HOSTED,
    audit_events,
    breaker_of,
    overrun,
    retry_storm,
)

SETTINGS = Settings(admins=ADMINS, governance_channel="C0GOVERN1")


def outbox_rows(session) -> list[OutboxMessage]:
    session.expire_all()
    return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_a_firing_sends_the_card_to_the_owner_and_each_admin_once(
    session, session_factory, registry
):
    (notice,) = notify_breakers(session_factory, SETTINGS, NOW, [overrun(pct=180)])

    assert notice.slug == BEDROCK
    assert notice.recipients == (OWNER, ADMIN)
    rows = outbox_rows(session)
    assert [(r.method, r.channel) for r in rows] == [
        ("chat.postMessage", OWNER),
        ("chat.postMessage", ADMIN),
    ]
    assert {r.idempotency_key for r in rows} == {
        f"breaker:{BEDROCK}:{notice.firing_id}:{OWNER}",
        f"breaker:{BEDROCK}:{notice.firing_id}:{ADMIN}",
    }
    actions_ids = [
        element["action_id"]
        for block in rows[0].payload["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]
    assert actions_ids == ["breaker_trip", "breaker_raise_budget", "breaker_ignore"]
    assert "180%" in rows[0].payload["text"]
    state = breaker_of(session, BEDROCK)["state"]
    assert state["status"] == "fired" and state["by"] == "system"
    (event,) = audit_events(session, "breaker.fire")
    assert event.actor == "system" and "180%" in event.reason

    # The same condition in the next check: no new firing, nothing more to send.
    assert notify_breakers(session_factory, SETTINGS, NOW + timedelta(hours=1), [overrun()]) == []
    assert len(outbox_rows(session)) == 2


def test_below_the_threshold_nothing_happens(session, session_factory, registry):
    findings = [overrun(pct=140), retry_storm(minutes=20)]
    assert notify_breakers(session_factory, SETTINGS, NOW, findings) == []
    assert outbox_rows(session) == []
    assert "state" not in breaker_of(session, BEDROCK)


def test_a_long_retry_storm_fires_the_self_hosted_breaker(session, session_factory, registry):
    (notice,) = notify_breakers(
        session_factory, SETTINGS, NOW, [retry_storm(slug=SELF_HOSTED, minutes=45)]
    )
    assert notice.slug == SELF_HOSTED
    assert "45 minutes" in notice.triggers[0]


def test_dry_run_writes_nothing(session, session_factory, registry):
    (notice,) = notify_breakers(session_factory, SETTINGS, NOW, [overrun()], dry_run=True)
    assert notice.recipients == (OWNER, ADMIN)
    assert notice.message.text.startswith("The cost circuit breaker of search-summaries fired")
    assert outbox_rows(session) == []
    assert "state" not in breaker_of(session, BEDROCK)
    assert audit_events(session) == []


def test_it_re_arms_when_the_condition_clears_and_fires_again_later(
    session, session_factory, registry
):
    (first,) = notify_breakers(session_factory, SETTINGS, NOW, [overrun()])
    assert notify_breakers(session_factory, SETTINGS, NOW + timedelta(hours=1), []) == []
    assert breaker_of(session, BEDROCK)["state"]["status"] == "armed"
    assert audit_events(session, "breaker.rearm")[0].reason == "the condition cleared"

    (second,) = notify_breakers(session_factory, SETTINGS, NOW + timedelta(days=1), [overrun()])
    assert second.firing_id != first.firing_id
    assert len(outbox_rows(session)) == 4  # a new card for the new firing


def test_ignored_stays_quiet_for_24_hours_then_may_fire_again(session, session_factory, registry):
    notify_breakers(session_factory, SETTINGS, NOW, [overrun()])
    outcome = actions.ignore(session_factory, BEDROCK, actor=OWNER, admins=ADMINS, now=NOW)
    assert outcome.ok
    assert breaker_of(session, BEDROCK)["state"]["ignored_until"].startswith("2026-03-18T10:00")

    quiet = NOW + timedelta(hours=23)
    assert notify_breakers(session_factory, SETTINGS, quiet, [overrun()]) == []
    assert breaker_of(session, BEDROCK)["state"]["status"] == "ignored"

    (again,) = notify_breakers(session_factory, SETTINGS, NOW + timedelta(hours=25), [overrun()])
    assert again.slug == BEDROCK


def test_a_tripped_breaker_sends_nothing_new(session, session_factory, registry):
    notify_breakers(session_factory, SETTINGS, NOW, [overrun()])
    assert actions.trip(session_factory, BEDROCK, actor=OWNER, admins=ADMINS, now=NOW).ok
    rows = len(outbox_rows(session))
    later = NOW + timedelta(hours=2)
    assert notify_breakers(session_factory, SETTINGS, later, [overrun(pct=300)]) == []
    assert notify_breakers(session_factory, SETTINGS, later, []) == []  # nor re-arms by itself
    assert len(outbox_rows(session)) == rows
    assert breaker_of(session, BEDROCK)["state"]["status"] == "tripped"


def test_after_someone_acts_every_copy_is_queued_for_update(session, session_factory, registry):
    notify_breakers(session_factory, SETTINGS, NOW, [overrun()])
    actions.trip(session_factory, BEDROCK, actor=ADMIN, admins=ADMINS, now=NOW)

    assert refresh_breaker_copies(session_factory, BEDROCK, NOW) == 2
    updates = [r for r in outbox_rows(session) if r.method == "chat.update"]
    posts = [r for r in outbox_rows(session) if r.method == "chat.postMessage"]
    assert sorted(u.payload["ts_from"] for u in updates) == sorted(p.idempotency_key for p in posts)
    assert {u.channel for u in updates} == {OWNER, ADMIN}
    buttons = [
        element["action_id"]
        for block in updates[0].payload["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]
    assert buttons == ["breaker_reset"]
    # Refreshing again for the same change queues nothing new (idempotent keys).
    refresh_breaker_copies(session_factory, BEDROCK, NOW)
    assert len([r for r in outbox_rows(session) if r.method == "chat.update"]) == 2


def test_recipients_when_the_owner_has_left_and_admins_are_a_user_group(
    session, session_factory, registry
):
    with transaction(session_factory) as leaving:
        owner = leaving.scalar(select(Person).where(Person.slack_id == OWNER))
        owner.active = False
    settings = Settings(admins=frozenset({"S0ADMINS1"}), governance_channel="C0GOVERN1")
    (notice,) = notify_breakers(session_factory, settings, NOW, [overrun()])
    assert notice.recipients == (BACKUP, "C0GOVERN1")
    channel_copy = outbox_rows(session)[-1]
    assert channel_copy.channel == "C0GOVERN1"
    assert "<!subteam^S0ADMINS1>" in str(channel_copy.payload["blocks"])


def test_nobody_to_tell_goes_to_the_governance_channel(session, session_factory, registry):
    with transaction(session_factory) as orphaning:
        workload = orphaning.scalar(select(Workload).where(Workload.slug == BEDROCK))
        workload.owner = None
        workload.backup_owner = None
    settings = Settings(admins=frozenset(), governance_channel="C0GOVERN1")
    (notice,) = notify_breakers(session_factory, settings, NOW, [overrun()])
    assert notice.recipients == ("C0GOVERN1",)


def test_one_bad_breaker_entry_does_not_stop_the_others(session, session_factory, registry):
    with transaction(session_factory) as breaking:
        workload = breaking.scalar(select(Workload).where(Workload.slug == BEDROCK))
        workload.breaker = {"principal": "not-an-arn"}
    notices = notify_breakers(
        session_factory, SETTINGS, NOW, [overrun(), retry_storm(slug=SELF_HOSTED, minutes=90)]
    )
    assert [n.slug for n in notices] == [SELF_HOSTED]

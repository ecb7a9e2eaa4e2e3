"""The authorisation matrix: every mutating action, for the owner, the backup owner, a member
of the same team, a stranger and a governance admin, through the Slack listeners (the
functions Bolt calls, with a real WebClient against the mock Slack Web API).

Each case checks three things: what the person was told, what changed in the database
(the expected change, or nothing at all), and the audit trail (`applied` by the actor, or
`refused` with the reason). The rules are the documented ones (docs/reliability.md has the
table; governance/permissions.py and docs/guardrails.md are where they live):

- claim: anyone, when the workload has no active owner; nobody when it has one (the owner's
  own claim is a no-op; an admin reassigns instead);
- assign, set the backup owner, set the budget (command or Raise budget), breaker Trip,
  asking for a Reset (with a reason), Ignore: the owner, the backup owner or an admin;
- approving a breaker Reset: an admin other than the one who asked (docs/guardrails.md);
- retire: an admin;
- an alert's Acknowledge and Snooze: the owner, the backup owner, the team (a member who owns
  another workload of the same team) or an admin; an alert of no workload: an admin;
- register a workload, record a decision: anyone (both are attributed and audited);
- attribution rules: nobody from Slack; they change only through the registry file
  (`llmgov registry import`, audited as `rules.set` by `registry:<file>`), so who may is
  whoever may merge to that file and run the import with the database credentials.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from logging import getLogger
from typing import Any

import pytest
from sqlalchemy import func, select

from llmgov.bot.blocks.breaker import (
    APPROVE_RESET,
    BUDGET_ACTION_ID,
    BUDGET_BLOCK_ID,
    IGNORE,
    REASON_ACTION_ID,
    REASON_BLOCK_ID,
    TRIP,
)
from llmgov.bot.blocks.decide import RECORD_ACTION
from llmgov.bot.blocks.owner import CLAIM_ACTION_ID, register_modal
from llmgov.bot.listeners.actions.alert_actions import handle_alert_ack, handle_alert_snooze
from llmgov.bot.listeners.actions.breaker_actions import (
    breaker_approve_reset_action,
    breaker_ignore_action,
    breaker_raise_budget_submission,
    breaker_reset_request_submission,
    breaker_trip_action,
)
from llmgov.bot.listeners.actions.decision_actions import record_decision_action
from llmgov.bot.listeners.actions.owner_claim import owner_claim_action
from llmgov.bot.listeners.commands.llm_owner import reply_llm_owner
from llmgov.bot.listeners.views import register_workload
from llmgov.bot.slack_client import make_client
from llmgov.commands import owner
from llmgov.governance.registry_file import import_registry, parse_registry
from llmgov.guardrails import actions as breaker
from llmgov.guardrails.state import BreakerState, Status, load_state, store_state
from llmgov.models.base import transaction
from llmgov.models.governance import Alert, DecisionRecord
from llmgov.models.registry import AttributionRule, AuditEvent, Workload
from tests.hardening.conftest import ADMIN, NEWBIE, ROLES, World
from tests.hardening.support import TRIGGER_ID, answer_problems, button_payload, snapshot

log = getLogger("tests.hardening.authorisation")
RESPONSE_URL = "https://hooks.slack.com/actions/T0HARDEN1/1/matrix"
EVERYONE = frozenset(ROLES)
OWNERS = frozenset({"owner", "backup", "admin"})


class Recorder:
    """Stands in for Bolt's `ack` and `respond`: keeps every call's keyword arguments."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)

    def texts(self) -> list[str]:
        return [call.get("text") or "" for call in self.calls]


@dataclass
class Ctx:
    deps: Any
    client: Any
    world: World
    session_factory: Any
    respond: Recorder

    @property
    def context(self) -> dict:
        from llmgov.bot.listeners.deps import CONTEXT_KEY

        return {CONTEXT_KEY: self.deps}


# ---- the actions -----------------------------------------------------------------------


def slash(ctx: Ctx, actor: str, text: str) -> None:
    command = {
        "command": "/llm-owner",
        "text": text,
        "user_id": actor,
        "channel_id": "C0GOVERN01",
        "trigger_id": TRIGGER_ID,
        "response_url": RESPONSE_URL,
    }
    reply = reply_llm_owner(ctx.deps, command, ctx.client)
    assert reply is not None
    ctx.respond(**reply.message.for_respond())


def click(listener: Callable, action_id: str, value: str) -> Callable[[Ctx, str], None]:
    def run(ctx: Ctx, actor: str) -> None:
        body = button_payload(action_id, value, actor, RESPONSE_URL)
        listener(
            ack=Recorder(),
            body=body,
            respond=ctx.respond,
            client=ctx.client,
            context=ctx.context,
            logger=log,
        )

    return run


def click_breaker(listener: Callable, action_id: str) -> Callable[[Ctx, str], None]:
    def run(ctx: Ctx, actor: str) -> None:
        body = button_payload(action_id, ctx.world.owned, actor, RESPONSE_URL)
        listener(
            ack=Recorder(), body=body, respond=ctx.respond, client=ctx.client, context=ctx.context
        )

    return run


def raise_budget(ctx: Ctx, actor: str) -> None:
    view = {
        "id": "V0RAISE01",
        "private_metadata": json.dumps({"slug": ctx.world.owned, "channel": None, "ts": None}),
        "state": {"values": {BUDGET_BLOCK_ID: {BUDGET_ACTION_ID: {"value": "6500"}}}},
    }
    ack = Recorder()
    breaker_raise_budget_submission(
        ack, {"user": {"id": actor}}, view, ctx.client, ctx.context, log
    )
    (answer,) = ack.calls  # accepted: closes the modal; refused: the reason under the field
    ctx.respond(text=" ".join((answer.get("errors") or {}).values()) or "✅ raised")


def register(ctx: Ctx, actor: str) -> None:
    view = register_modal(actor, {"response_url": ""}).to_dict()
    values = {"slug": f"new-{actor.lower()}", "name": "New", "team": "search"}
    state = {k: {"value": {"type": "plain_text_input", "value": v}} for k, v in values.items()}
    state["platform"] = {"value": {"type": "static_select", "selected_option": {"value": "other"}}}
    state["owner"] = {"value": {"type": "users_select", "selected_user": actor}}
    view.update(id="V0REG0001", state={"values": state})
    ack = Recorder()
    register_workload.register_workload_submission(
        ack, {"user": {"id": actor}}, view, ctx.context, log
    )
    (answer,) = ack.calls
    ctx.respond(text=json.dumps(answer.get("errors")) if answer else "✅ registered")


def ask_for_reset(ctx: Ctx, actor: str) -> None:
    """The Reset button's modal, submitted with a reason (a reset is asked for, then approved)."""
    view = {
        "id": "V0RESET01",
        "private_metadata": json.dumps({"slug": ctx.world.owned, "channel": None, "ts": None}),
        "state": {"values": {REASON_BLOCK_ID: {REASON_ACTION_ID: {"value": "launch traffic"}}}},
    }
    ack = Recorder()
    breaker_reset_request_submission(
        ack, {"user": {"id": actor}}, view, ctx.client, ctx.context, log
    )
    (answer,) = ack.calls
    ctx.respond(text=" ".join((answer.get("errors") or {}).values()) or "✅ asked")


def trip_first(ctx: Ctx) -> None:
    """Reset needs a tripped breaker (tripped by someone who is not the admin acting)."""
    with transaction(ctx.session_factory) as tx:
        workload = tx.scalar(select(Workload).where(Workload.slug == ctx.world.owned))
        store_state(
            workload,
            BreakerState(status=Status.TRIPPED, since=datetime.now(UTC), by="U0SOMEONE"),
        )


def trip_and_ask(ctx: Ctx) -> None:
    """Approving needs a reset asked for, by the owner, with a reason."""
    trip_first(ctx)
    outcome = breaker.request_reset(
        ctx.session_factory,
        ctx.world.owned,
        actor=ROLES["owner"],
        admins={ADMIN},
        now=datetime.now(UTC),
        reason="the launch traffic is expected",
    )
    assert outcome.ok, outcome.message


def _workload(session, slug: str) -> Workload:
    session.rollback()  # a fresh read: ends the SQLite WAL snapshot
    return session.scalar(select(Workload).where(Workload.slug == slug))


def _owner_is(session, slug: str, actor: str) -> bool:
    workload = _workload(session, slug)
    return workload.owner is not None and workload.owner.slack_id == actor


def _breaker_status(session, slug: str) -> str:
    return load_state(_workload(session, slug)).status.value


def open_alert(ctx: Ctx) -> None:
    """A critical budget alert of the owned workload, posted and open."""
    with transaction(ctx.session_factory) as session:
        workload = session.scalar(select(Workload).where(Workload.slug == ctx.world.owned))
        session.add(
            Alert(
                fingerprint="fp-matrix",
                kind="budget_exceeded",
                severity="critical",
                workload_id=workload.id,
                message="search-summaries spent $4,210 of its $4,000 budget",
            )
        )


def click_alert(listener: Callable) -> Callable[[Ctx, str], None]:
    def run(ctx: Ctx, actor: str) -> None:
        with ctx.session_factory() as session:
            alert_id = session.scalar(select(Alert.id).where(Alert.fingerprint == "fp-matrix"))
        body = button_payload("alert_ack", str(alert_id), actor, RESPONSE_URL)
        listener(
            ack=Recorder(),
            body=body,
            respond=ctx.respond,
            context=ctx.context,
            logger=log,
            client=ctx.client,
        )

    return run


def _alert_status(session) -> str:
    session.rollback()  # a fresh read: ends the SQLite WAL snapshot
    return session.scalar(select(Alert.status).where(Alert.fingerprint == "fp-matrix"))


RECORD_VALUE = json.dumps({"t": "search-summaries tokens_per_month=2B", "d": "2026-03-02"})


@dataclass(frozen=True)
class Case:
    run: Callable[[Ctx, str], None]
    allowed: frozenset[str]
    audit_action: str
    effect: Callable[..., bool]  # (session, world, actor) -> the change was made
    setup: Callable[[Ctx], None] | None = None


CASES: dict[str, Case] = {
    "claim-unowned": Case(
        lambda ctx, actor: slash(ctx, actor, f"claim {ctx.world.unowned}"),
        EVERYONE,
        "owner.claim",
        lambda s, w, actor: _owner_is(s, w.unowned, actor),
    ),
    "claim-owned-button": Case(
        click(owner_claim_action, CLAIM_ACTION_ID, World.owned),
        frozenset(),  # the owner's own claim is a no-op, checked apart
        "owner.claim",
        lambda s, w, actor: _owner_is(s, w.owned, actor),
    ),
    "assign": Case(
        lambda ctx, actor: slash(ctx, actor, f"assign {ctx.world.owned} <@{NEWBIE}|nina>"),
        OWNERS,
        "owner.assign",
        lambda s, w, actor: _owner_is(s, w.owned, NEWBIE),
    ),
    "backup": Case(
        lambda ctx, actor: slash(ctx, actor, f"backup {ctx.world.owned} <@{NEWBIE}>"),
        OWNERS,
        "backup_owner.set",
        lambda s, w, actor: _workload(s, w.owned).backup_owner.slack_id == NEWBIE,
    ),
    "budget-command": Case(
        lambda ctx, actor: slash(ctx, actor, f"budget {ctx.world.owned} 5000"),
        OWNERS,
        "budget.set",
        lambda s, w, actor: _workload(s, w.owned).budget_monthly == Decimal("5000"),
    ),
    "budget-raise-modal": Case(
        raise_budget,
        OWNERS,
        "budget.set",
        lambda s, w, actor: _workload(s, w.owned).budget_monthly == Decimal("6500"),
    ),
    "retire": Case(
        lambda ctx, actor: slash(ctx, actor, f"retire {ctx.world.owned}"),
        frozenset({"admin"}),
        "workload.retire",
        lambda s, w, actor: _workload(s, w.owned).status == "retired",
    ),
    "breaker-trip": Case(  # the world's breaker is a dry run: Trip records "would trip"
        click_breaker(breaker_trip_action, TRIP),
        OWNERS,
        "breaker.trip",
        lambda s, w, actor: (load_state(_workload(s, w.owned)).would_trip or {}).get("by") == actor,
    ),
    "breaker-reset": Case(  # asking for a reset, with a reason
        ask_for_reset,
        OWNERS,
        "breaker.reset_request",
        lambda s, w, actor: (
            (load_state(_workload(s, w.owned)).reset_request or {}).get("by") == actor
        ),
        setup=trip_first,
    ),
    "breaker-approve-reset": Case(  # the second person: a governance admin
        click_breaker(breaker_approve_reset_action, APPROVE_RESET),
        frozenset({"admin"}),
        "breaker.reset",
        lambda s, w, actor: _breaker_status(s, w.owned) == "armed",
        setup=trip_and_ask,
    ),
    "breaker-ignore": Case(
        click_breaker(breaker_ignore_action, IGNORE),
        OWNERS,
        "breaker.ignore",
        lambda s, w, actor: _breaker_status(s, w.owned) == "ignored",
    ),
    "alert-acknowledge": Case(
        click_alert(handle_alert_ack),
        frozenset({"owner", "backup", "member", "admin"}),
        "alert.acknowledge",
        lambda s, w, actor: _alert_status(s) == "acknowledged",
        setup=open_alert,
    ),
    "alert-snooze": Case(
        click_alert(handle_alert_snooze),
        frozenset({"owner", "backup", "member", "admin"}),
        "alert.snooze",
        lambda s, w, actor: _alert_status(s) == "snoozed",
        setup=open_alert,
    ),
    "decision-record": Case(
        click(record_decision_action, RECORD_ACTION, RECORD_VALUE),
        EVERYONE,
        "decision.record",
        lambda s, w, actor: s.scalar(select(DecisionRecord.decided_by)) == actor,
    ),
    "register": Case(
        register,
        EVERYONE,
        "workload.register",
        lambda s, w, actor: _owner_is(s, f"new-{actor.lower()}", actor),
    ),
}
MATRIX = [(name, role) for name in CASES for role in ROLES]


@pytest.fixture
def ctx(deps, settings, session_factory, world) -> Ctx:
    return Ctx(deps, make_client(settings), world, session_factory, Recorder())


def _events_after(session, first_id: int) -> list[AuditEvent]:
    session.rollback()  # a fresh read: ends the SQLite WAL snapshot
    return list(
        session.scalars(select(AuditEvent).where(AuditEvent.id > first_id).order_by(AuditEvent.id))
    )


@pytest.mark.parametrize(("name", "role"), MATRIX, ids=[f"{n}-{r}" for n, r in MATRIX])
def test_matrix(name, role, ctx, session, engine, slack_mock):
    case, actor = CASES[name], ROLES[role]
    if case.setup:
        case.setup(ctx)
    last_event = session.scalar(select(func.max(AuditEvent.id))) or 0
    before = snapshot(engine)

    case.run(ctx, actor)

    told = " ".join(ctx.respond.texts())
    for call in ctx.respond.calls:  # every answer is sendable
        assert answer_problems(call.get("blocks") or [], call.get("text")) == []
    events = _events_after(session, last_event)
    if name == "claim-owned-button" and role == "owner":
        assert "already" in told and snapshot(engine) == before and events == []
    elif role in case.allowed:
        assert case.effect(session, ctx.world, actor), told
        applied = [e for e in events if e.action == case.audit_action]
        assert [(e.actor, e.outcome) for e in applied] == [(actor, "applied")], told
    else:
        assert not case.effect(session, ctx.world, actor)
        assert [(e.action, e.actor, e.outcome) for e in events] == [
            (case.audit_action, actor, "refused")
        ], told
        (refusal,) = events
        assert refusal.reason and "governance admin" in refusal.reason  # says who may
        assert "governance admin" in told
        # nothing but the refusal's audit event was written
        after = snapshot(engine)
        after["audit_events"] = before["audit_events"]
        assert after == before


def test_no_slack_command_changes_attribution_rules(ctx, session, engine):
    """Rules have no Slack command: for every role, a try is a usage error that changes
    nothing (and, not being an action on a workload, leaves no audit event)."""
    before = snapshot(engine)
    for actor in ROLES.values():
        for text in (
            f"rules {ctx.world.owned} tag:llm-workload=x",
            f"match {ctx.world.owned} model_id=anthropic.claude",
            f"rule {ctx.world.owned} add",
        ):
            answer = owner.answer(ctx.session_factory, text, actor, {ADMIN})
            assert isinstance(answer, owner.ErrorAnswer), (actor, text)
    assert snapshot(engine) == before


def test_attribution_rules_change_only_through_the_registry_file_and_are_audited(ctx, session):
    registry = parse_registry(
        f"""
teams: [{{slug: search, name: Search}}]
workloads:
  - slug: {ctx.world.owned}
    match:
      - {{tag: {{llm-workload: summaries-v2}}}}
""",
        "registry.yaml",
    )
    with transaction(ctx.session_factory) as tx:
        import_registry(tx, registry)
    session.rollback()  # a fresh read: ends the SQLite WAL snapshot
    rules = session.scalars(select(AttributionRule.match)).all()
    assert any("summaries-v2" in json.dumps(rule) for rule in rules)
    (event,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "rules.set")).all()
    assert (event.actor, event.outcome, event.entity_key) == (
        "registry:registry.yaml",
        "applied",
        ctx.world.owned,
    )
    assert "summaries-v2" in json.dumps(event.after)


def test_an_alert_of_no_workload_is_acknowledged_by_admins_only():
    from llmgov.governance.permissions import authorise_alert

    for action in ("acknowledge", "snooze"):
        assert authorise_alert(ADMIN, action, None, {ADMIN})
        refused = authorise_alert(ROLES["owner"], action, None, {ADMIN})
        assert not refused and "only a governance admin" in refused.reason

"""The alert buttons as plain functions: ack and snooze redraw the post in place and are
audited; refusals answer only the clicker; Assign opens a modal with the slug."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from logging import Logger
from unittest.mock import Mock

from slack_bolt import Ack, Respond
from slack_sdk import WebClient
from sqlalchemy import select

from llmgov.bot.listeners.actions import alert_actions
from llmgov.bot.listeners.deps import CONTEXT_KEY, AppDeps
from llmgov.bot.settings import Settings
from llmgov.governance import alerts
from llmgov.governance.findings import Finding
from llmgov.models.governance import Alert
from llmgov.models.registry import AuditEvent

T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)


def _context(session_factory):
    return {CONTEXT_KEY: AppDeps.build(Settings(), session_factory)}


def _open_alert(session_factory, registry_factory) -> int:
    with session_factory() as session:
        registry = registry_factory(session)
        owner = registry.person("U0ANA0001", "Ana")
        registry.workload("search", owner=owner)
        finding = Finding(
            "spend_anomaly",
            "warning",
            "search",
            "U0ANA0001",
            None,
            Decimal("42"),
            "USD",
            "search spent 3x the usual",
            {},
            "fp-1",
        )
        alert = alerts.sync(session, [finding], T0)[0].alert
        session.commit()
        return alert.id


def _body(action_value: str, user="U0ANA0001") -> dict:  # the owner: may ack and snooze
    return {
        "user": {"id": user},
        "actions": [{"value": action_value}],
        "trigger_id": "123.456",
        "response_url": "http://127.0.0.1:9/respond",
    }


def test_acknowledge_redraws_in_place_and_audits(session_factory):
    from tests.governance.conftest import Registry

    alert_id = _open_alert(session_factory, Registry)
    ack, respond = Mock(Ack), Mock(Respond)
    alert_actions.handle_alert_ack(
        ack, _body(str(alert_id)), respond, _context(session_factory), Mock(Logger)
    )
    ack.assert_called_once()
    kwargs = respond.call_args.kwargs
    assert kwargs["replace_original"] is True
    fields = [
        f["text"] for b in kwargs["blocks"] if b["type"] == "section" for f in b.get("fields") or []
    ]
    assert "*Status*\nAcknowledged by <@U0ANA0001>" in fields
    with session_factory() as session:
        assert session.get(Alert, alert_id).status == "acknowledged"
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "alert.acknowledge"))
        assert event.actor == "U0ANA0001"


def test_snooze_sets_seven_days(session_factory):
    from tests.governance.conftest import Registry

    alert_id = _open_alert(session_factory, Registry)
    respond = Mock(Respond)
    alert_actions.handle_alert_snooze(
        Mock(Ack), _body(str(alert_id)), respond, _context(session_factory), Mock(Logger)
    )
    with session_factory() as session:
        alert = session.get(Alert, alert_id)
        assert alert.status == "snoozed"
        assert (alert.snoozed_until - datetime.now(UTC)).days in (6, 7)
    assert respond.call_args.kwargs["replace_original"] is True


def test_a_resolved_or_unknown_alert_is_refused_to_the_clicker_only(session_factory):
    respond = Mock(Respond)
    alert_actions.handle_alert_ack(
        Mock(Ack), _body("999"), respond, _context(session_factory), Mock(Logger)
    )
    kwargs = respond.call_args.kwargs
    assert kwargs["response_type"] == "ephemeral" and kwargs["replace_original"] is False
    assert (
        kwargs["text"]
        == "Could not acknowledge this alert: there is no alert 999; it may have been removed"
    )
    respond = Mock(Respond)
    alert_actions.handle_alert_snooze(
        Mock(Ack), _body("not-a-number"), respond, _context(session_factory), Mock(Logger)
    )
    assert "carries no alert id" in respond.call_args.kwargs["text"]


def test_assign_opens_a_modal_for_the_slug(session_factory):
    client = Mock(WebClient)
    alert_actions.handle_workload_assign(
        Mock(Ack), _body("search"), client, _context(session_factory), Mock(Logger)
    )
    kwargs = client.views_open.call_args.kwargs
    assert kwargs["trigger_id"] == "123.456"
    assert '"slug": "search"' in kwargs["view"]["private_metadata"]


def test_assign_submission_assigns_through_the_registry_rules(session_factory):
    from tests.governance.conftest import Registry

    with session_factory() as session:
        registry = Registry(session)
        registry.person("U0CAT0003", "Cat")
        registry.workload("orphan", status="discovered")
        session.commit()
    view = {
        "private_metadata": '{"slug": "orphan", "response_url": ""}',
        "state": {"values": {"new_owner": {"user": {"selected_user": "U0CAT0003"}}}},
    }
    ack = Mock(Ack)
    # An unowned workload: only an admin may assign it (anyone may claim it).
    alert_actions.handle_assign_submission(
        ack,
        {"user": {"id": "U0BOB0002"}},
        view,
        Mock(WebClient),
        _context(session_factory),
        Mock(Logger),
    )
    errors = ack.call_args.kwargs["errors"]["new_owner"]
    assert "governance admin" in errors
    admin_context = {
        CONTEXT_KEY: AppDeps.build(Settings(admins=frozenset({"U0ADM0009"})), session_factory)
    }
    ack = Mock(Ack)
    alert_actions.handle_assign_submission(
        ack, {"user": {"id": "U0ADM0009"}}, view, Mock(WebClient), admin_context, Mock(Logger)
    )
    assert ack.call_args.kwargs == {}
    with session_factory() as session:
        from llmgov.models.registry import Workload

        workload = session.scalar(select(Workload).where(Workload.slug == "orphan"))
        assert workload.owner.slack_id == "U0CAT0003" and workload.status == "active"


def test_register_wires_every_button_and_the_modal():
    from slack_bolt import App

    app = App(token="xoxb-test", signing_secret="s", token_verification_enabled=False)
    alert_actions.register(app)
    names = {listener.ack_function.__name__ for listener in app._listeners}
    assert names == {
        "handle_alert_ack",
        "handle_alert_snooze",
        "handle_alert_show_cost",
        "handle_workload_claim",
        "handle_workload_assign",
        "handle_assign_submission",
    }


def test_show_cost_answers_the_clicker_with_llm_cost(session_factory):
    from tests.governance.conftest import Registry

    alert_id = _open_alert(session_factory, Registry)
    respond = Mock(Respond)
    alert_actions.handle_alert_show_cost(
        Mock(Ack),
        _body(str(alert_id)),
        respond,
        Mock(WebClient),
        _context(session_factory),
        Mock(Logger),
    )
    kwargs = respond.call_args.kwargs
    assert kwargs["response_type"] == "ephemeral" and kwargs["replace_original"] is False
    assert "search" in kwargs["text"]

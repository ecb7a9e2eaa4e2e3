"""Request signing through the real HTTP server: bot/server.py's Flask app under waitress on
a loopback port, the real Bolt app, the mock Slack Web API.

Every kind of request Slack sends (a slash command, a button, a modal submission, an event)
is sent forged, signed with the wrong secret, altered after signing, stale, from the future
and without headers: each gets 401 and has no effect (every table unchanged, no Web API or
response_url call). Then the genuine request, signed right, does have its effect: the
harness could see one.

Replays: Bolt alone would accept the same signed request again within its 5-minute window;
`build_app` installs `bot.replay_guard.ReplayGuard`, so a replay gets 401 and has no effect,
while the same request signed anew (a person asking twice) still goes through.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from llmgov.bot.app import build_app
from llmgov.bot.blocks.decide import RECORD_ACTION
from llmgov.bot.blocks.owner import CLAIM_ACTION_ID, register_modal
from llmgov.bot.replay_guard import ReplayGuard
from llmgov.models.governance import DecisionRecord
from llmgov.models.registry import AuditEvent, Workload
from tests.hardening.conftest import ADMIN, NEWBIE, OWNER, STRANGER, World
from tests.hardening.support import (
    LiveServer,
    button_payload,
    interaction_body,
    post,
    signed_headers,
    slash_body,
    snapshot,
)

WHAT_IF = "tokens_per_month=2B"


@dataclass(frozen=True)
class Genuine:
    """A request that changes something when accepted, and how to see that it did."""

    body: Callable[[LiveServer, World], str]
    content_type: str
    effect: Callable[..., bool]  # (session, slack_mock, world) -> the effect happened


def _retire_body(server: LiveServer, world: World) -> str:
    return slash_body("/llm-owner", f"retire {world.owned}", ADMIN, server.response_url)


def _retired(session, slack_mock, world: World) -> bool:
    slack_mock.wait_for("response_url")
    session.rollback()  # a fresh read: ends the SQLite WAL snapshot
    status = session.scalar(select(Workload.status).where(Workload.slug == world.owned))
    return status == "retired"


def _claim_body(server: LiveServer, world: World) -> str:
    return interaction_body(
        button_payload(CLAIM_ACTION_ID, world.unowned, STRANGER, server.response_url)
    )


def _claimed(session, slack_mock, world: World) -> bool:
    slack_mock.wait_for("response_url")
    session.rollback()  # a fresh read: ends the SQLite WAL snapshot
    workload = session.scalar(select(Workload).where(Workload.slug == world.unowned))
    return workload.owner is not None and workload.owner.slack_id == STRANGER


def _register_body(server: LiveServer, world: World) -> str:
    view = register_modal(NEWBIE, {"response_url": server.response_url}).to_dict()
    values = {
        "slug": "forged-workload",
        "name": "Forged",
        "team": "search",
    }
    state = {k: {"value": {"type": "plain_text_input", "value": v}} for k, v in values.items()}
    state["platform"] = {"value": {"type": "static_select", "selected_option": {"value": "other"}}}
    state["owner"] = {"value": {"type": "users_select", "selected_user": NEWBIE}}
    payload = {
        "type": "view_submission",
        "team": {"id": "T0HARDEN1"},
        "user": {"id": NEWBIE},
        "api_app_id": "A0LLMGOV",
        "view": {**view, "id": "V0HARDEN1", "state": {"values": state}},
    }
    return interaction_body(payload)


def _registered(session, slack_mock, world: World) -> bool:
    slack_mock.wait_for("response_url")
    session.rollback()  # a fresh read: ends the SQLite WAL snapshot
    return session.scalar(select(Workload.id).where(Workload.slug == "forged-workload")) is not None


def _home_body(server: LiveServer, world: World) -> str:
    return json.dumps(
        {
            "token": "legacy",
            "team_id": "T0HARDEN1",
            "api_app_id": "A0LLMGOV",
            "event": {"type": "app_home_opened", "user": OWNER, "tab": "home"},
            "type": "event_callback",
            "event_id": "Ev0HARDEN1",
            "event_time": int(time.time()),
        }
    )


def _home_published(session, slack_mock, world: World) -> bool:
    (published,) = slack_mock.wait_for("views.publish")
    return published.args["user_id"] == OWNER


def _record_body(server: LiveServer, world: World) -> str:
    value = json.dumps({"t": WHAT_IF, "d": datetime.now(UTC).date().isoformat()})
    return interaction_body(button_payload(RECORD_ACTION, value, STRANGER, server.response_url))


def _recorded(session, slack_mock, world: World) -> bool:
    slack_mock.wait_for("response_url")
    return session.scalar(select(func.count()).select_from(DecisionRecord)) == 1


FORM = "application/x-www-form-urlencoded"
REQUESTS = {
    "slash-command-retire": Genuine(_retire_body, FORM, _retired),
    "button-claim": Genuine(_claim_body, FORM, _claimed),
    "modal-register": Genuine(_register_body, FORM, _registered),
    "event-app-home": Genuine(_home_body, "application/json", _home_published),
    "button-record-decision": Genuine(_record_body, FORM, _recorded),
}


def tampered_headers(body: str, now: int) -> dict[str, dict[str, str]]:
    """Every way a request can fail verification, as the headers sent with `body`."""
    good = signed_headers(body, now)
    other_body = body.replace("retire", "show").replace(STRANGER, ADMIN) + "&x=1"
    return {
        "forged-signature": {**good, "X-Slack-Signature": "v0=" + "0" * 64},
        "wrong-secret": signed_headers(body, now, secret="not-the-signing-secret"),
        "signed-for-another-body": signed_headers(other_body, now),
        "signature-without-version": {**good, "X-Slack-Signature": good["X-Slack-Signature"][3:]},
        "stale-301s": signed_headers(body, now - 301),
        "stale-1-day": signed_headers(body, now - 86_400),
        "from-the-future-310s": signed_headers(body, now + 310),
        "no-signature-header": {"X-Slack-Request-Timestamp": str(now)},
        "no-timestamp-header": {"X-Slack-Signature": good["X-Slack-Signature"]},
        "no-headers": {},
    }


@pytest.mark.parametrize("kind", list(REQUESTS))
def test_unverified_requests_get_401_and_have_no_effect(
    kind, live_server, slack_mock, session, engine, world
):
    genuine = REQUESTS[kind]
    body = genuine.body(live_server, world)
    before = snapshot(engine)

    for name, headers in tampered_headers(body, int(time.time())).items():
        reply = live_server.send(body, headers=headers, content_type=genuine.content_type)
        assert (name, reply.status, reply.json()) == (name, 401, {"error": "invalid request"})

    # Verification happens before any listener starts: nothing ran, nothing was called.
    assert snapshot(engine) == before
    assert slack_mock.state.calls == []

    # The same request signed right does have its effect (so the checks above could fail).
    reply = live_server.send(body, content_type=genuine.content_type)
    assert reply.status == 200
    assert genuine.effect(session, slack_mock, world)


# Headers Bolt's verifier cannot even parse: slack_sdk's SignatureVerifier.is_valid raises
# (int(timestamp) -> ValueError; hmac.compare_digest on non-ASCII text -> TypeError) instead
# of returning False, the exception reaches bot/app.py handle_error(), and that answers
# "something went wrong" at the response_url of the *unverified* body: any URL the sender
# chooses gets a POST from the bot (blind request forgery), and the sender gets a 500.
UNPARSABLE = {
    "timestamp-not-a-number": {"X-Slack-Request-Timestamp": "soon"},
    "timestamp-too-long": {"X-Slack-Request-Timestamp": "9" * 5000},
    "signature-not-ascii": {"X-Slack-Signature": "v0=" + "é" * 64},
}


@pytest.mark.parametrize("name", list(UNPARSABLE))
def test_unparsable_signature_headers_get_401_and_call_nobody(
    name, live_server, slack_mock, engine, world
):
    # the sender picks the response_url; the mock stands in for "anywhere"
    body = slash_body("/llm-owner", f"retire {world.owned}", ADMIN, live_server.response_url)
    headers = {**signed_headers(body, int(time.time())), **UNPARSABLE[name]}
    before = snapshot(engine)
    reply = live_server.send(body, headers=headers)
    time.sleep(0.3)  # the error handler answers right after the 500
    assert snapshot(engine) == before  # the registry is safe either way
    assert slack_mock.state.calls == []
    assert reply.status == 401


def test_a_signed_request_answers_only_on_the_events_path(live_server, slack_mock, world):
    body = slash_body("/llm-owner", "list", STRANGER, live_server.response_url)
    headers = signed_headers(body, int(time.time()))
    assert post(live_server.url + "/slack/event", body, headers).status == 404
    assert post(live_server.url + "/healthz", body, headers).status == 405
    assert slack_mock.state.calls == []


# ---- replays --------------------------------------------------------------------------


def _audit_count(session, action: str) -> int:
    return session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
    )


def test_a_replay_gets_401_and_the_same_command_signed_anew_changes_nothing_more(
    live_server, slack_mock, session, world
):
    """A replay (same signature) is refused before any listener runs. The same request signed
    anew, as Slack signs a person's second click, is answered again, and the registry
    operations are idempotent: the second run changes nothing and audits nothing."""
    budget = slash_body("/llm-owner", f"budget {world.owned} 5000", OWNER, live_server.response_url)
    claim = interaction_body(
        button_payload(CLAIM_ACTION_ID, world.unowned, STRANGER, live_server.response_url)
    )
    now = int(time.time())
    answers = 0
    for body in (budget, claim):
        headers = signed_headers(body, now)
        assert live_server.send(body, headers=headers).status == 200
        answers += 1
        slack_mock.wait_for("response_url", answers)
        replay = live_server.send(body, headers=headers)
        assert (replay.status, replay.json()) == (401, {"error": "invalid request"})
        assert live_server.send(body, headers=signed_headers(body, now + 1)).status == 200
        answers += 1
        slack_mock.wait_for("response_url", answers)
    texts = [call.args["text"] for call in slack_mock.calls_to("response_url")]
    # the second answer says so: "Nothing to change: … already like that."
    assert ["already" in text for text in texts] == [False, True, False, True], texts
    assert _audit_count(session, "budget.set") == 1
    assert _audit_count(session, "owner.claim") == 1
    session.rollback()  # a fresh read: ends the SQLite WAL snapshot
    owned = session.scalar(select(Workload).where(Workload.slug == world.owned))
    assert owned.budget_monthly == 5000


def test_a_replayed_request_is_rejected(live_server, slack_mock, answers, session, world):
    body = _record_body(live_server, world)
    now = int(time.time())
    headers = signed_headers(body, now)
    assert live_server.send(body, headers=headers).status == 200
    slack_mock.wait_for("response_url")
    replay = live_server.send(body, headers=headers)
    assert (replay.status, replay.json()) == (401, {"error": "invalid request"})
    # a forged request is refused by Bolt's verification before the guard sees it
    forged = {**headers, "X-Slack-Signature": "v0=" + "1" * 64}
    assert live_server.send(body, headers=forged).status == 401
    assert answers.wait_idle(timeout=10)  # had the replay been processed, it would be done
    assert session.scalar(select(func.count()).select_from(DecisionRecord)) == 1
    assert len(slack_mock.calls_to("response_url")) == 1
    # Slack's own next request (a new timestamp, so a new signature) still goes through.
    assert live_server.send(body, headers=signed_headers(body, now + 1)).status == 200
    slack_mock.wait_for("response_url", 2)
    assert session.scalar(select(func.count()).select_from(DecisionRecord)) == 2


def test_socket_mode_has_no_replay_guard(settings, session_factory):
    """Socket Mode requests are unsigned: there is no signature to remember."""

    def guards(app) -> int:
        return sum(isinstance(m, ReplayGuard) for m in app._middleware_list)

    http = build_app(settings, session_factory, token_verification_enabled=False)
    socket = build_app(
        settings, session_factory, token_verification_enabled=False, socket_mode=True
    )
    assert (guards(http), guards(socket)) == (1, 0)


def test_the_replay_guard_forgets_signatures_once_they_are_too_old_to_verify():
    clock = {"now": 1_000_000.0}
    guard = ReplayGuard(clock=lambda: clock["now"])
    assert guard._remember("v0=a", "1000000")
    assert not guard._remember("v0=a", "1000000")
    clock["now"] += 300  # still verifiable: still remembered
    assert not guard._remember("v0=a", "1000000")
    clock["now"] += 1  # the verifier would refuse this timestamp now anyway
    assert guard._remember("v0=b", "1000301")
    assert guard.remembered == 1  # memory stays bounded by the window


def test_a_timestamp_from_the_future_does_not_hold_back_forgetting_the_others():
    clock = {"now": 1_000_000.0}
    guard = ReplayGuard(clock=lambda: clock["now"])
    assert guard._remember("v0=ahead", "1000299")  # 5 minutes ahead: kept for 10
    for second in range(600):
        clock["now"] = 1_000_000.0 + second
        assert guard._remember(f"v0={second}", str(1_000_000 + second))
    # only what is still verifiable is held: the last 301 seconds, and the one ahead
    assert guard.remembered == 302
    assert not guard._remember("v0=ahead", "1000299")
    clock["now"] += 301  # every timestamp so far, the one ahead included, is now too old
    assert guard._remember("v0=later", str(int(clock["now"])))
    assert guard.remembered == 1


def test_the_replay_guard_accepts_a_signature_once_under_concurrency():
    guard = ReplayGuard()
    now = str(int(time.time()))
    accepted: list[bool] = []
    start = threading.Barrier(8)

    def send() -> None:
        start.wait()
        for number in range(200):
            accepted.append(guard._remember(f"v0={number}", now))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(accepted) == 8 * 200
    assert accepted.count(True) == 200  # each signature got through exactly once

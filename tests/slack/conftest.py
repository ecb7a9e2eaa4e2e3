"""Fixtures for Slack tests: settings pointing at the mock Web API, a real Bolt app served by
the real WSGI app (bot/server.py) on an ephemeral loopback port, and signed requests."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import SignatureVerifier
from werkzeug.serving import make_server

from llmgov.bot.app import build_app
from llmgov.bot.listeners.deps import AppDeps
from llmgov.bot.server import EVENTS_PATH, create_web_app, database_check
from llmgov.bot.settings import Settings
from tests.owner.factories import ADMIN

SIGNING_SECRET = "test-signing-secret-0123456789"
BOT_TOKEN = "xoxb-test-0000-secret"
TRIGGER_ID = "13345224609.738474920.8088930838d88f008e0"


@pytest.fixture
def settings(slack_mock, database_url) -> Settings:
    return Settings(
        database_url=database_url,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack_mock.url,
        admins=frozenset({ADMIN}),
    )


@pytest.fixture
def deps(settings, session_factory) -> AppDeps:
    return AppDeps.build(settings, session_factory)


@pytest.fixture
def bolt_app(settings, session_factory, answers):
    return build_app(settings, session_factory, token_verification_enabled=False, answers=answers)


@dataclass
class Reply:
    status: int
    body: str
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class SlackServer:
    url: str  # http://127.0.0.1:PORT
    response_url: str  # where the mock captures respond()

    def get(self, path: str) -> Reply:
        return _send(urllib.request.Request(self.url + path))

    def post(
        self,
        body: str,
        content_type: str = "application/x-www-form-urlencoded",
        *,
        timestamp: int | None = None,
        secret: str = SIGNING_SECRET,
        signature: str | None = None,
        omit: tuple[str, ...] = (),
    ) -> Reply:
        """POST `body` to /slack/events, signed like Slack signs (unless told otherwise)."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature
            or SignatureVerifier(secret).generate_signature(timestamp=ts, body=body),
        }
        for name in omit:
            headers.pop(name)
        request = urllib.request.Request(
            self.url + EVENTS_PATH, data=body.encode(), headers=headers, method="POST"
        )
        return _send(request)

    def command(self, text: str, user: str, **kwargs) -> Reply:
        return self.post(slash_body(text, user, self.response_url), **kwargs)

    def interaction(self, payload: dict[str, Any], **kwargs) -> Reply:
        return self.post(urlencode({"payload": json.dumps(payload)}), **kwargs)

    def event(self, event: dict[str, Any], **kwargs) -> Reply:
        body = {
            "token": "legacy",
            "team_id": "T0TEST",
            "api_app_id": "A0LLMGOV",
            "event": event,
            "type": "event_callback",
            "event_id": "Ev0000001",
            "event_time": int(time.time()),
        }
        return self.post(json.dumps(body), "application/json", **kwargs)


def _send(request: urllib.request.Request) -> Reply:
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Reply(response.status, response.read().decode(), dict(response.headers))
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.read().decode(), dict(error.headers))


def slash_body(text: str, user: str, response_url: str, command: str = "/llm-owner") -> str:
    """A slash command as Slack sends it: form-encoded, raw (signatures cover these bytes)."""
    return urlencode(
        {
            "token": "legacy-verification-token",
            "team_id": "T0TEST",
            "team_domain": "acme",
            "channel_id": "C0GOVERN01",
            "channel_name": "llm-governance",
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": "A0LLMGOV",
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": TRIGGER_ID,
        }
    )


@pytest.fixture
def slack_server(bolt_app, answers, session_factory, slack_mock) -> Iterator[SlackServer]:
    web = create_web_app(bolt_app, health_checks=(database_check(session_factory),))
    server = make_server("127.0.0.1", 0, web, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield SlackServer(
            url=f"http://127.0.0.1:{server.server_port}",
            response_url=slack_mock.response_url + "T0TEST/1/abc",
        )
    finally:
        server.shutdown()
        thread.join(5)
        # let listeners still running after their ack, then the answers they handed on,
        # finish before the DB is emptied
        bolt_app.listener_runner.listener_executor.shutdown(wait=True)
        answers.shutdown(wait=True)

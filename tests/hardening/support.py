"""Helpers for the hardening suite: Slack-shaped requests, a real waitress server, answer
checks (Block Kit limits, no live markup from user input) and database snapshots."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from flask import Flask
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import select
from sqlalchemy.engine import Engine

from llmgov.bot.blocks.common import MAX_MESSAGE_BLOCKS, MAX_SURFACE_BLOCKS, message_problems
from llmgov.bot.server import EVENTS_PATH
from llmgov.models.base import Base

# Secrets that must never leak: shaped like the real ones (the redaction also matches shapes).
SIGNING_SECRET = "8f14e45fceea167a5a36dedd4bea2543"
BOT_TOKEN = "xoxb-1111111111-2222222222-HardeningBotTokenSecret0"
APP_TOKEN = "xapp-1-A0LLMGOV-3333333333-hardeningappsecret0123456789"
SECRETS = (SIGNING_SECRET, BOT_TOKEN, APP_TOKEN)

TEAM_ID = "T0HARDEN1"
TRIGGER_ID = "13345224609.738474920.8088930838d88f008e0"


# ---- requests as Slack sends them ----------------------------------------------------


def slash_body(command: str, text: str, user: str, response_url: str) -> str:
    """A slash command, form-encoded as Slack sends it (the signature covers these bytes)."""
    return urlencode(
        {
            "token": "legacy-verification-token",
            "team_id": TEAM_ID,
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


def interaction_body(payload: Mapping[str, Any]) -> str:
    return urlencode({"payload": json.dumps(payload)})


def button_payload(
    action_id: str, value: str, user: str, response_url: str, **extra: Any
) -> dict[str, Any]:
    """A block_actions payload for one button click in an ephemeral message."""
    return {
        "type": "block_actions",
        "team": {"id": TEAM_ID},
        "user": {"id": user},
        "api_app_id": "A0LLMGOV",
        "container": {"type": "message", "is_ephemeral": True},
        "channel": {"id": "C0GOVERN01"},
        "response_url": response_url,
        "trigger_id": TRIGGER_ID,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "b1",
                "value": value,
                "action_ts": "1700000000.000100",
            }
        ],
        **extra,
    }


def signed_headers(body: str, timestamp: int, secret: str = SIGNING_SECRET) -> dict[str, str]:
    ts = str(timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}


@dataclass
class HttpReply:
    status: int
    body: str
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


def post(
    url: str,
    body: str,
    headers: Mapping[str, str],
    content_type: str = "application/x-www-form-urlencoded",
) -> HttpReply:
    request = urllib.request.Request(
        url,
        data=body.encode(),
        headers={"Content-Type": content_type, **headers},
        method="POST",
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            text = response.read().decode()
            return HttpReply(response.status, text, time.perf_counter() - started)
    except urllib.error.HTTPError as error:
        return HttpReply(error.code, error.read().decode(), time.perf_counter() - started)


# ---- the real HTTP server: bot/server.py's Flask app under waitress ---------------------


@dataclass
class LiveServer:
    """`create_web_app(...)` served by waitress on an ephemeral loopback port."""

    url: str  # http://127.0.0.1:PORT
    response_url: str  # where the mock Slack captures respond()

    @property
    def events_url(self) -> str:
        return self.url + EVENTS_PATH

    def send(
        self,
        body: str,
        *,
        timestamp: int | None = None,
        secret: str = SIGNING_SECRET,
        headers: Mapping[str, str] | None = None,
        content_type: str = "application/x-www-form-urlencoded",
    ) -> HttpReply:
        """POST `body` signed like Slack signs it, unless `headers` replaces the signature."""
        if headers is None:
            ts = int(time.time()) if timestamp is None else timestamp
            headers = signed_headers(body, ts, secret)
        return post(self.events_url, body, headers, content_type)


@dataclass
class WaitressThread:
    """waitress in a thread, stoppable: the loop polls in short steps and, once told to
    stop, closes its sockets itself (closing them from another thread races its select)."""

    web: Flask
    threads: int = 8
    options: dict[str, Any] = field(default_factory=dict)  # more waitress adjustments
    _server: Any = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False)

    def start(self) -> str:
        from waitress import create_server

        self._server = create_server(
            self.web,
            host="127.0.0.1",
            port=0,
            threads=self.threads,
            ident="llmgov",
            **self.options,
        )
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return f"http://127.0.0.1:{self._server.effective_port}"

    def _run(self) -> None:
        from waitress import wasyncore

        server = self._server
        while not self._stopping.is_set():
            wasyncore.loop(timeout=0.05, map=server._map, count=1)
        for channel in list(server._map.values()):
            channel.close()

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
        self._server.task_dispatcher.shutdown()


@contextmanager
def serve_in_thread(web: Flask, **options: Any) -> Iterator[str]:
    """Yield the base URL of `web` served by waitress; stop it afterwards."""
    server = WaitressThread(web, options=options)
    try:
        yield server.start()
    finally:
        server.stop()


# ---- answers: valid Block Kit, no live markup taken from input ---------------------------

# Markup that notifies or links once it reaches Slack unescaped. The bot never writes these
# in an answer, so finding one means input (typed text, registry names) got through. The
# hostile input uses recognisable targets: evil.example and the user group S0EVIL.
LIVE_MARKUP = re.compile(
    r"<(?:!channel|!here|!everyone|!subteam\^S0EVIL|(?:https?://|mailto:)[^>|]*evil\.example)",
    re.IGNORECASE,
)


def _mrkdwn_texts(node: Any) -> Iterator[str]:
    """Every mrkdwn text in a Block Kit structure (plain_text never renders markup)."""
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
            yield node["text"]
        for value in node.values():
            yield from _mrkdwn_texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _mrkdwn_texts(item)


def live_markup(blocks: list[dict[str, Any]], text: str | None) -> list[str]:
    """Live mentions of everyone and links to evil.example in the answer's mrkdwn and text."""
    found: list[str] = []
    for piece in [text or "", *_mrkdwn_texts(blocks)]:
        found += [match.group(0) for match in LIVE_MARKUP.finditer(piece)]
    return found


def as_dicts(blocks: Iterable[Block | dict[str, Any]]) -> list[dict[str, Any]]:
    return [block if isinstance(block, dict) else block.to_dict() for block in blocks]


def answer_problems(
    blocks: Iterable[Block | dict[str, Any]],
    text: str | None,
    *,
    max_blocks: int = MAX_MESSAGE_BLOCKS,
) -> list[str]:
    """Why this answer could not be sent to Slack as is (empty: it is fine).

    The project's validator (`message_problems`: slack_sdk's own checks plus the limits the
    SDK skips), then the markup check: no input becomes a live mention or link.
    """
    block_dicts = as_dicts(blocks)
    problems = message_problems(block_dicts, text, max_blocks=max_blocks)
    problems += [f"live markup: {found!r}" for found in live_markup(block_dicts, text)]
    return problems


def view_problems(view: View | dict[str, Any]) -> list[str]:
    """The same checks for a modal: the SDK validates the view, then each block."""
    data = view.to_dict() if isinstance(view, View) else View(**view).to_dict()
    title = (data.get("title") or {}).get("text")
    return answer_problems(data.get("blocks", []), title, max_blocks=MAX_SURFACE_BLOCKS)


# ---- the database, before and after ------------------------------------------------------


def snapshot(engine: Engine) -> dict[str, list[tuple]]:
    """Every row of every table, as comparable tuples: "no effect" means this is unchanged."""
    result: dict[str, list[tuple]] = {}
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            rows = connection.execute(select(table)).all()
            result[table.name] = sorted((tuple(map(repr, row)) for row in rows), key=repr)
    return result

"""Bounded, verified-first requests at the edge (docs/reliability.md, findings 1 and 9).

Through the real WSGI app (bot/server.py) under waitress on loopback: a body over
`MAX_BODY_BYTES` gets 413 before it is read, whether its length is declared or it is
streamed; an unverified body is never parsed and never logged, and no logged input can
forge a log line; bodies Slack never sends (`payload=x`, `payload=[1]`, bad JSON) get 400
or 401, never a 500 or a traceback. The memory figure is `benchmarks/bench_big_request.py`.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import time
from urllib.parse import urlencode, urlsplit

import pytest

from llmgov.bot.app import RedactSecrets, install_log_redaction
from llmgov.bot.server import (
    EVENTS_PATH,
    MAX_BODY_BYTES,
    BoundedBody,
)
from tests.hardening.conftest import OWNER
from tests.hardening.support import slash_body

FORGED = {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=" + "0" * 64}


def raw_exchange(url: str, head: str, body_parts: list[bytes], *, timeout: float = 10) -> bytes:
    """Send the request head and as much of the body as the server takes; its answer."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as connection:
        connection.sendall(head.encode())
        for part in body_parts:
            try:
                connection.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break
        answer = b""
        while b"\r\n\r\n" not in answer:
            piece = connection.recv(65536)
            if not piece:
                break
            answer += piece
        return answer


def _head(length: str | None, *, chunked: bool = False) -> str:
    lines = [
        f"POST {EVENTS_PATH} HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/x-www-form-urlencoded",
        *(f"{name}: {value}" for name, value in FORGED.items()),
    ]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    return "\r\n".join(lines) + "\r\n\r\n"


def test_a_declared_body_over_the_limit_gets_413_without_being_read(live_server):
    """300 MB declared, 10 bytes sent: the answer comes at once, not after the rest. waitress
    buffers a whole body before the WSGI app runs, so its own limit (WAITRESS_OPTIONS, its
    default is 1 GB) answers here; `BoundedBody` does the same under any other server."""
    started = time.perf_counter()
    answer = raw_exchange(live_server.url, _head(str(300_000_000)), [b"token=abc&"])
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.perf_counter() - started < 5


def test_a_streamed_body_over_the_limit_gets_413(live_server):
    piece = b"A" * 65536
    chunks = [f"{len(piece):x}\r\n".encode() + piece + b"\r\n"] * (MAX_BODY_BYTES // 65536 + 2)
    answer = raw_exchange(live_server.url, _head(None, chunked=True), [*chunks, b"0\r\n\r\n"])
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


class _Unreadable(io.RawIOBase):
    def read(self, size=-1):  # the layer must answer without reading
        raise AssertionError("the body was read")


def test_the_wsgi_layer_answers_413_from_the_declared_length_alone():
    called = []
    layer = BoundedBody(lambda environ, start: called.append(1) or [b"ok"], limit=1000)
    statuses = []
    environ = {"CONTENT_LENGTH": "1001", "wsgi.input": _Unreadable(), "PATH_INFO": "/x"}
    body = b"".join(layer(environ, lambda status, headers: statuses.append(status)))
    assert statuses == ["413 Request Entity Too Large"] and b"1000" in body and called == []

    environ = {"CONTENT_LENGTH": "1000", "wsgi.input": io.BytesIO(b"x" * 1000)}
    assert b"".join(layer(environ, lambda status, headers: statuses.append(status))) == b"ok"


def test_a_signed_request_near_the_limit_still_goes_through(live_server, slack_mock, world):
    padding = "x" * (MAX_BODY_BYTES - 4096)
    body = slash_body("/llm-owner", "help", OWNER, live_server.response_url) + "&pad=" + padding
    assert len(body) < MAX_BODY_BYTES
    assert live_server.send(body).status == 200
    slack_mock.wait_for("response_url")


def test_an_unverified_body_is_never_logged(live_server, slack_mock, caplog, world):
    """Bolt's verifier logged the whole body at INFO, with its response_url and token."""
    marker = "https://hooks.slack.com/commands/T0/LEAKED-RESPONSE-URL"
    body = urlencode(
        {"token": "legacy-token-LEAKED", "response_url": marker, "text": "hi\nforged line"}
    )
    with caplog.at_level(logging.DEBUG):
        reply = live_server.send(body, headers=FORGED)
    assert reply.status == 401
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "LEAKED" not in logged and "forged line" not in logged
    assert slack_mock.state.calls == []


def test_a_logged_input_cannot_forge_a_log_line(settings):
    """Every handler `llmgov serve` logs through escapes control characters."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    holder = logging.getLogger("tests.hardening.forge.holder")
    holder.addHandler(handler)
    install_log_redaction(settings, holder)
    forged = "2026-12-08 02:00:00,000 INFO governance.audit budget.set search-summaries applied"
    try:
        holder.warning("could not parse %r: %s", "x", f"bad\n{forged}\r\u2028\x1b[31m")
        try:
            raise ValueError(f"bad value\n{forged}")
        except ValueError:
            holder.exception("failed")
    finally:
        holder.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert not [line for line in lines if line.startswith("2026-12-08 02:00:00")], lines
    assert lines[0].endswith("bad\\n" + forged + "\\r\\u2028\\x1b[31m")
    assert any(isinstance(f, RedactSecrets) for f in handler.filters)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("payload=x", "application/x-www-form-urlencoded"),
        ("payload=%5B1%5D", "application/x-www-form-urlencoded"),
        ("payload=%7B%22type%22%3A", "application/x-www-form-urlencoded"),
        ("payload=%7B%7D&payload=%7B%7D", "application/x-www-form-urlencoded"),
        ("{not json", "application/json"),
        ("[1, 2]", "application/json"),
        ("\xff\xfe", "application/json"),
    ],
)
def test_malformed_requests_get_400_or_401_never_a_500(
    body, content_type, live_server, slack_mock, caplog, world
):
    with caplog.at_level(logging.DEBUG):
        unsigned = live_server.send(body, headers=FORGED, content_type=content_type)
        signed = live_server.send(body, content_type=content_type)
    assert unsigned.status == 401, unsigned
    assert signed.status == 400, signed
    assert json.loads(signed.body)["error"].startswith("the ")
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert slack_mock.state.calls == []

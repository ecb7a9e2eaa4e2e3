"""/metrics is not public (docs/reliability.md, finding 13).

It shows spend and source scopes. `llmgov serve` serves it on the public port only behind
`Authorization: Bearer $LLMGOV_METRICS_TOKEN`; with `--metrics-port` on a separate bind
(loopback by default) instead; with neither it is off. The real process with a token is
`tests/slack/test_cli.py::test_serve_runs_the_app_over_http`.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request

import pytest
from flask import Flask

from llmgov.bot.cli.serve import start_metrics_server
from llmgov.bot.metrics import make_metrics_view
from llmgov.bot.server import create_web_app

TOKEN = "a-long-random-metrics-token"


def _client(session_factory, token):
    web = Flask(__name__)
    web.add_url_rule("/metrics", view_func=make_metrics_view(session_factory, token=token))
    return web.test_client()


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", TOKEN],
)
def test_without_the_token_metrics_get_401(authorization, session_factory):
    headers = {"Authorization": authorization} if authorization is not None else {}
    reply = _client(session_factory, TOKEN).get("/metrics", headers=headers)
    assert reply.status_code == 401
    assert "llmgov_" not in reply.get_data(as_text=True)


def test_with_the_token_metrics_are_served(session_factory):
    reply = _client(session_factory, TOKEN).get(
        "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert (
        reply.status_code == 200
        and "llmgov_outbox_oldest_pending_age_seconds" in reply.get_data(as_text=True)
    )


def test_serve_without_a_token_has_no_public_metrics(bolt_app):
    """What `llmgov serve` builds when neither the token nor --metrics-port is given."""
    web = create_web_app(bolt_app, metrics_view=None)
    assert web.test_client().get("/metrics").status_code == 404


def test_metrics_on_a_separate_bind(session_factory):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start_metrics_server(make_metrics_view(session_factory), "127.0.0.1", port)
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as reply:
                assert "llmgov_outbox_oldest_pending_age_seconds" in reply.read().decode()
                break
        except urllib.error.URLError:
            assert time.monotonic() < deadline
            time.sleep(0.1)

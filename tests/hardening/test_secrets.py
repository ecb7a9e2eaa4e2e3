"""Secrets (the bot token, the app token, the signing secret) never appear in logs or in
messages: logs captured at DEBUG across a signed request through the real server, a Web API
error, forged requests, and a start of `llmgov serve` (in-process, and as a real process
whose stderr is read)."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import llmgov.bot.cli.serve  # noqa: F401  (makes bot.cli.serve an attribute to patch)
from llmgov import bot
from llmgov.bot.app import RedactSecrets, install_log_redaction
from llmgov.bot.cli import main
from tests.hardening.conftest import ADMIN, NEWBIE, STRANGER
from tests.hardening.support import (
    APP_TOKEN,
    BOT_TOKEN,
    SECRETS,
    SIGNING_SECRET,
    LiveServer,
    WaitressThread,
    post,
    signed_headers,
    slash_body,
)
from tests.support.slack_mock import Fault

REPO = Path(__file__).resolve().parents[2]


def leaks(text: str) -> list[str]:
    """Which secrets `text` contains (each also matched by a distinctive slice of it)."""
    return [s for s in SECRETS if s in text or s[-16:] in text]


def record_texts(records: list[logging.LogRecord]) -> str:
    """Everything a handler could write for these records: message, args, traceback."""
    parts = []
    for record in records:
        parts += [record.getMessage(), repr(record.args)]
        if record.exc_text:  # what a handler's Formatter writes for the exception
            parts.append(record.exc_text)
        elif record.exc_info:
            parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


def messages_sent(slack_mock) -> str:
    """What the bot sent to Slack, without the token it authenticates with (that one must
    be sent, in the Authorization header, which the mock records as `token`)."""
    return json.dumps(
        [{k: v for k, v in call.args.items() if k != "token"} for call in slack_mock.state.calls],
        default=str,
    )


def test_a_session_of_requests_and_web_api_errors_logs_no_secret(
    live_server, slack_mock, settings, world, caplog
):
    caplog.set_level(logging.DEBUG)
    install_log_redaction(settings)  # what `llmgov serve` does at start-up
    slack_mock.fail_next("views.open", Fault(500, error="invalid_auth"))

    commands = [
        ("register", NEWBIE),  # views.open fails: a Web API error, answered at the response_url
        (f"claim {world.unowned}", STRANGER),
        (f"retire {world.owned}", ADMIN),
        (f"budget {world.owned} lots", ADMIN),  # a parse error
    ]
    for sent, (text, user) in enumerate(commands, start=1):  # one at a time
        body = slash_body("/llm-owner", text, user, live_server.response_url)
        assert live_server.send(body).status == 200
        slack_mock.wait_for("response_url", sent)
    forged = slash_body("/llm-owner", "list", STRANGER, live_server.response_url)
    assert live_server.send(forged, secret="guess").status == 401  # Bolt logs the attempt
    assert post(live_server.events_url, "not a slack request", {}).status == 401

    text = record_texts(caplog.records) + caplog.text
    assert len(caplog.records) >= 10  # there were logs to leak into
    assert "invalid_auth" in text  # the Web API error was logged...
    assert leaks(text) == []  # ...and no secret
    assert leaks(messages_sent(slack_mock)) == []


def test_the_redaction_catches_secrets_however_they_are_logged(settings):
    """Whatever code logs by mistake (a message, an argument, an exception) comes out
    redacted: the configured values and anything shaped like a Slack token."""
    redactor = RedactSecrets(settings.secrets())
    records = [
        logging.LogRecord("x", logging.INFO, "x", 1, "token %s", (BOT_TOKEN,), None),
        logging.LogRecord("x", logging.INFO, "x", 1, f"secret={SIGNING_SECRET}", None, None),
        logging.LogRecord("x", logging.INFO, "x", 1, "other xoxp-123-456-abcdef", None, None),
    ]
    try:
        raise RuntimeError(f"bad app token {APP_TOKEN}")
    except RuntimeError:
        records.append(logging.LogRecord("x", logging.ERROR, "x", 1, "boom", None, sys.exc_info()))
    for record in records:
        assert redactor.filter(record)
    text = record_texts(records)
    assert leaks(text) == [] and "xoxp-123" not in text
    assert text.count("[redacted]") >= 4


def _serve_briefly(settings_env: dict[str, str], response_url: str, caplog) -> list[int]:
    """Run `llmgov -v serve --no-scheduler` in-process; instead of serving forever, serve
    the very app it built on a loopback port for a few requests, then return."""
    statuses: list[int] = []

    def serve_http(web, host, port, threads=8):
        server = WaitressThread(web)
        url = server.start()
        try:
            live = LiveServer(url=url, response_url=response_url)
            body = slash_body("/llm-owner", "help", STRANGER, live.response_url)
            statuses.append(live.send(body).status)
            statuses.append(live.send(body, secret="guess").status)
            for path in ("/healthz", "/metrics"):
                metrics_token = settings_env.get("LLMGOV_METRICS_TOKEN", "")
                request = urllib.request.Request(
                    url + path, headers={"Authorization": f"Bearer {metrics_token}"}
                )
                with urllib.request.urlopen(request, timeout=10) as response:
                    statuses.append(response.status)
        finally:
            server.stop()

    with pytest.MonkeyPatch.context() as patch:
        for name, value in settings_env.items():
            patch.setenv(name, value)
        patch.setattr(bot.cli.serve, "serve_http", serve_http)
        caplog.set_level(logging.DEBUG)
        assert main(["-v", "serve", "--no-scheduler", "--host", "127.0.0.1"]) == 0
    return statuses


def test_an_in_process_start_of_llmgov_serve_logs_no_secret(
    engine, database_url, slack_mock, caplog
):
    env = {
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_APP_TOKEN": APP_TOKEN,
        "SLACK_API_URL": slack_mock.url,
        "LLMGOV_ADMINS": ADMIN,
        "LLMGOV_METRICS_TOKEN": "metrics-token-0123456789",
    }
    statuses = _serve_briefly(env, slack_mock.response_url + "T0/1/x", caplog)
    assert statuses == [200, 401, 200, 200]
    assert [c.method for c in slack_mock.state.calls][:1] == ["auth.test"]  # the token checked
    text = record_texts(caplog.records) + caplog.text
    assert "auth.test" in text and len(caplog.records) > 10
    assert leaks(text) == []
    assert leaks(messages_sent(slack_mock)) == []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_stderr_of_a_real_llmgov_serve_process_holds_no_secret(
    engine, database_url, slack_mock, tmp_path
):
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_APP_TOKEN": APP_TOKEN,
        "SLACK_API_URL": slack_mock.url,
        "PYTHONPATH": str(REPO),
    }
    stderr_path = tmp_path / "serve.stderr"
    command = [
        sys.executable,
        "-c",
        "import sys; from llmgov.bot.cli import main; sys.exit(main())",
    ]
    command += ["-v", "serve", "--no-scheduler", "--host", "127.0.0.1", "--port", str(port)]
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=stderr, stderr=stderr)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:  # bounded: until healthy, the process died, or 60 s
                assert process.poll() is None, stderr_path.read_text()
                try:
                    with urllib.request.urlopen(base + "/healthz", timeout=2):
                        break
                except OSError:
                    assert time.monotonic() < deadline, "llmgov serve did not start"
                    time.sleep(0.2)
            live = LiveServer(url=base, response_url=slack_mock.response_url + "T0/1/x")
            body = slash_body("/llm-owner", "list", STRANGER, live.response_url)
            assert live.send(body).status == 200
            slack_mock.wait_for("response_url")
            assert live.send(body, headers=signed_headers(body, 1, "guess")).status == 401
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
    logs = stderr_path.read_text(errors="replace")
    assert "slack.api_call" in logs and "DEBUG" in logs  # it did log, verbosely
    assert leaks(logs) == []

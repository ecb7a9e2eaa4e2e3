"""bot.logging_setup: JSON log lines, secrets never written."""

from __future__ import annotations

import io
import json
import logging

import pytest

from llmgov.bot.logging_setup import configure_logging
from llmgov.bot.settings import Settings

SETTINGS = Settings(
    slack_bot_token="xoxb-1111-2222-secretbot",
    slack_signing_secret="8f2b0c9d7e6a5b4c3d2e1f00aabbccdd",
    slack_app_token="xapp-1-A0-secretapp",
)


@pytest.fixture
def captured():
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    # other tests may have left our loggers with a level or disabled (e.g. by a logging
    # config with disable_existing_loggers): start from a clean slate for these assertions
    ours = [logging.getLogger(name) for name in logging.root.manager.loggerDict]
    ours = [lg for lg in ours if isinstance(lg, logging.Logger)]
    saved_loggers = [(lg, lg.level, lg.disabled, lg.propagate) for lg in ours]
    for lg in ours:
        lg.setLevel(logging.NOTSET)
        lg.disabled = False
        lg.propagate = True
    stream = io.StringIO()
    configure_logging(SETTINGS, stream=stream, json_lines=True)
    yield stream
    for lg, level, disabled, propagate in saved_loggers:
        lg.setLevel(level)
        lg.disabled, lg.propagate = disabled, propagate
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_with_extra_fields(captured):
    logging.getLogger("llmgov.jobs").info(
        "job %s done", "digest", extra={"job": "digest", "outcome": "success"}
    )
    [entry] = lines(captured)
    assert entry["message"] == "job digest done"
    assert (entry["level"], entry["logger"], entry["job"], entry["outcome"]) == (
        "info",
        "llmgov.jobs",
        "digest",
        "success",
    )
    assert entry["ts"].endswith("+00:00")


def test_secrets_are_redacted_everywhere(captured):
    log = logging.getLogger("llmgov.test")
    log.warning("token %s and secret %s", SETTINGS.slack_bot_token, SETTINGS.slack_signing_secret)
    log.info("context", extra={"header": f"Bearer {SETTINGS.slack_app_token}"})
    log.info("a token I was never told about: xoxb-9999-8888-other")
    try:
        raise RuntimeError(f"auth failed for {SETTINGS.slack_bot_token}")
    except RuntimeError:
        log.exception("call failed")
    text = captured.getvalue()
    for secret in [*SETTINGS.secrets(), "xoxb-9999-8888-other"]:
        assert secret not in text
    entries = lines(captured)
    assert len(entries) == 4
    assert entries[0]["message"] == "token [redacted] and secret [redacted]"
    assert entries[1]["header"] == "Bearer [redacted]"
    assert "[redacted]" in entries[3]["exc"]

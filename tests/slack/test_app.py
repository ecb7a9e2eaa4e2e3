"""The app factory, the shared recording client and the log redaction."""

from __future__ import annotations

import logging

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from llmgov.bot.app import RedactSecrets, build_app, install_log_redaction
from llmgov.bot.settings import Settings
from llmgov.bot.slack_client import RecordingWebClient, make_client
from llmgov.models.errors import BadInput
from tests.slack.conftest import BOT_TOKEN, SIGNING_SECRET
from tests.support.slack_mock import Fault


def test_the_shared_client_uses_slack_api_url_and_retries_rate_limits(settings, slack_mock):
    client = make_client(settings)
    assert client.base_url == slack_mock.url
    assert client.token == BOT_TOKEN
    assert any(isinstance(h, RateLimitErrorRetryHandler) for h in client.retry_handlers)

    slack_mock.fail_next("views.publish", Fault(429, retry_after=0))
    client.views_publish(user_id="U0ANA0001", view={"type": "home", "blocks": []})
    attempts = [c.status for c in slack_mock.state.calls if c.method == "views.publish"]
    assert attempts == [429, 200]  # retried after Retry-After, then served


def test_the_client_records_every_call_and_its_outcome(settings, slack_mock):
    client = make_client(settings)
    client.auth_test()
    with pytest.raises(SlackApiError):
        client.users_info(user="U0NOBODY1")  # the mock answers user_not_found
    slack_mock.fail_next("auth.test", Fault(500))
    with pytest.raises(SlackApiError):
        client.auth_test()
    assert client.stats.snapshot() == {
        "auth.test": {"internal_error": 1, "ok": 1},  # the error code Slack gave
        "users.info": {"user_not_found": 1},
    }
    assert client.stats.total() == 3 and client.stats.total("auth.test") == 2


def test_client_logs_method_and_outcome_but_no_token(settings, slack_mock, caplog):
    client = make_client(settings)
    with caplog.at_level(logging.INFO, logger="llmgov.bot.slack_client"):
        client.auth_test()
    assert "slack.api_call method=auth.test outcome=ok" in caplog.text
    assert BOT_TOKEN not in caplog.text


def test_build_app_uses_the_shared_client(settings, session_factory):
    app = build_app(settings, session_factory, token_verification_enabled=False)
    assert isinstance(app.client, RecordingWebClient)
    assert app.process_before_response is False


def test_build_app_refuses_to_run_without_secrets(settings, session_factory):
    from dataclasses import replace

    with pytest.raises(BadInput, match="SLACK_SIGNING_SECRET"):
        build_app(replace(settings, slack_signing_secret=None), session_factory)
    with pytest.raises(BadInput, match="SLACK_BOT_TOKEN"):
        build_app(replace(settings, slack_bot_token=None), session_factory)
    # Socket Mode needs no signing secret
    app = build_app(
        replace(settings, slack_signing_secret=None),
        session_factory,
        token_verification_enabled=False,
        socket_mode=True,
    )
    assert app is not None


def test_build_app_verifies_the_token_at_start(settings, session_factory, slack_mock):
    build_app(settings, session_factory)
    assert [c.method for c in slack_mock.state.calls] == ["auth.test"]


def test_redaction_filter_removes_secrets_and_token_shapes():
    settings = Settings(
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_app_token="xapp-1-A0-123-abc",
    )
    redact = RedactSecrets(settings.secrets())
    record = logging.LogRecord(
        "x",
        logging.INFO,
        __file__,
        1,
        "token %s secret %s other xoxp-99-zz",
        (BOT_TOKEN, SIGNING_SECRET),
        None,
    )
    assert redact.filter(record) is True
    assert record.getMessage() == "token [redacted] secret [redacted] other [redacted]"


def test_redaction_covers_exception_text():
    redact = RedactSecrets([SIGNING_SECRET])
    try:
        raise ValueError(f"bad {SIGNING_SECRET}")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    redact.filter(record)
    assert SIGNING_SECRET not in record.exc_text and "[redacted]" in record.exc_text


def test_install_log_redaction_on_handlers(caplog):
    settings = Settings(slack_bot_token=BOT_TOKEN)
    logger = logging.getLogger("llmgov.test.redaction")
    handler = logging.StreamHandler()
    logger.addHandler(handler)
    try:
        install_log_redaction(settings, logger)
        install_log_redaction(settings, logger)  # idempotent
        assert sum(isinstance(f, RedactSecrets) for f in handler.filters) == 1
    finally:
        logger.removeHandler(handler)


def test_the_client_feeds_the_process_metrics(settings, slack_mock):
    from llmgov.bot import metrics

    labels = {"method": "views.publish", "status": "ok"}
    before = metrics.REGISTRY.get("llmgov_slack_calls_total", labels)
    make_client(settings).views_publish(user_id="U0ANA0001", view={"type": "home", "blocks": []})
    assert metrics.REGISTRY.get("llmgov_slack_calls_total", labels) == before + 1


def test_web_app_health_and_metrics_hook(bolt_app):
    from llmgov.bot.server import create_web_app

    web = create_web_app(
        bolt_app,
        health_checks=(lambda: None, lambda: "database: OperationalError"),
        metrics_view=lambda: ("llmgov_up 1\n", 200, {"Content-Type": "text/plain"}),
    )
    client = web.test_client()
    unhealthy = client.get("/healthz")
    assert unhealthy.status_code == 503
    assert unhealthy.get_json() == {"ok": False, "problems": ["database: OperationalError"]}
    assert client.get("/metrics").get_data(as_text=True) == "llmgov_up 1\n"
    assert client.get("/slack/events").status_code == 405  # Slack only POSTs
    bare = create_web_app(bolt_app).test_client()
    assert bare.get("/healthz").get_json() == {"ok": True}
    assert bare.get("/metrics").status_code == 404


def test_building_the_app_logs_no_token_unused_warning(
    settings, session_factory, monkeypatch, caplog
):
    """Every start used to log Bolt's "`token` will be unused": Bolt reads SLACK_BOT_TOKEN
    from the environment although it is given the shared client built from that token."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    with caplog.at_level(logging.WARNING, logger="slack_bolt"):
        build_app(settings, session_factory, token_verification_enabled=False)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("slack_bolt")] == []

"""Credentials in a source URL (docs/reliability.md, finding 12).

A Prometheus source configured as `http://user:password@host` was named verbatim in the
collector's error, the source status, the `stale_data` finding and the alert posted to
Slack. Now every place that names a source shows `http://[redacted]@host`: the stored
scope and error, the finding (`llmgov check --format json`), the Slack alert, and the logs.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from sqlalchemy import select

from llmgov.bot.app import RedactSecrets
from llmgov.bot.blocks.alerts import alert_message, alert_view
from llmgov.bot.cli import main
from llmgov.collectors.run import collect
from llmgov.models.facts import SourceStatus
from llmgov.models.governance import Alert
from llmgov.models.redaction import redact_url, redact_urls_in
from tests.collectors.helpers import set_source

PASSWORD = "s3cret-Pr0m-pass"
URL = f"http://metrics-reader:{PASSWORD}@127.0.0.1:9"  # port 9: nothing listens


def test_the_rule():
    assert redact_url(URL) == "http://[redacted]@127.0.0.1:9"
    assert redact_url("https://prom.example:9090/api") == "https://prom.example:9090/api"
    assert redact_urls_in(f"cannot reach {URL}/x: refused; also ftp://a@b") == (
        "cannot reach http://[redacted]@127.0.0.1:9/x: refused; also ftp://[redacted]@b"
    )
    assert redact_urls_in("mail ana@example.com about http://host/a@b") == (
        "mail ana@example.com about http://host/a@b"
    )


def test_a_source_url_with_credentials_is_never_shown(session_factory, session, caplog, capsys):
    with session_factory.begin() as setup:
        set_source(setup, "prometheus", {"url": URL, "stale_after_hours": 1})
    with caplog.at_level(logging.DEBUG):
        report = collect(session_factory, datetime.now(UTC), sources=["prometheus"])
    (result,) = [r for r in report.results if not r.ok]
    assert PASSWORD not in f"{result.scope} {result.error}"
    assert "http://[redacted]@127.0.0.1:9" in result.error

    statuses = session.scalars(select(SourceStatus)).all()
    assert statuses and not [s for s in statuses if PASSWORD in f"{s.scope} {s.last_error}"]

    assert main(["check", "--dry-run", "--format", "json"]) == 0
    findings = json.loads(capsys.readouterr().out)
    stale = [f for f in findings if f["kind"] == "stale_data"]
    assert stale, findings
    assert PASSWORD not in json.dumps(findings)

    for finding in stale:  # as the alert would be posted
        alert = Alert(
            id=1,
            fingerprint=finding["fingerprint"],
            kind=finding["kind"],
            severity=finding["severity"],
            status="open",
            amount=0,
            currency="USD",
            message=finding["message"],
            details=finding["details"],
            first_seen_at=datetime.now(UTC),
            last_seen_at=datetime.now(UTC),
        )
        assert PASSWORD not in json.dumps(alert_message(alert_view(alert, None)).to_dict())

    redactor = RedactSecrets(())
    logged = [redactor.redact(r.getMessage()) for r in caplog.records]
    assert not [line for line in logged if PASSWORD in line]


def test_an_alert_stored_before_the_fix_is_posted_without_the_credentials():
    alert = Alert(
        id=3,
        fingerprint="fp",
        kind="stale_data",
        severity="warning",
        status="open",
        amount=0,
        currency="USD",
        message=f"prometheus {URL} has delivered nothing",
        details={"source": "prometheus", "scope": URL, "last_error": f"cannot reach {URL}"},
        first_seen_at=datetime(2026, 11, 3, tzinfo=UTC),
        last_seen_at=datetime(2026, 11, 3, tzinfo=UTC),
    )
    message = alert_message(alert_view(alert, None))
    assert PASSWORD not in json.dumps(message.to_dict())

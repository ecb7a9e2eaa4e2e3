"""bot.metrics: the Prometheus text exposition of the bot's own health."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from decimal import Decimal

from flask import Flask

from llmgov.bot import metrics
from llmgov.bot.metrics import Registry, make_metrics_view, metrics_view, render_metrics
from llmgov.models.base import transaction
from llmgov.models.facts import ApiCallLog, SourceStatus
from llmgov.models.governance import Alert, JobLease, OutboxMessage

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
SAMPLE = re.compile(r'^([a-z_:][a-z0-9_:]*)(\{([a-z_]+="(?:[^"\\]|\\.)*",?)*\})? (\S+)$')


def parse(text: str) -> dict[str, float]:
    """Check every line is valid exposition format; return {sample line without value: value}."""
    samples: dict[str, float] = {}
    declared: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            declared.add(line.split()[2])
            continue
        match = SAMPLE.match(line)
        assert match, f"not a valid sample line: {line!r}"
        assert match.group(1) in declared, f"{match.group(1)} has no HELP/TYPE"
        samples[line.rsplit(" ", 1)[0]] = float(match.group(4))
    return samples


def seed(session_factory) -> None:
    with transaction(session_factory) as session:
        session.add(
            SourceStatus(
                source="cost_explorer",
                scope="111122223333",
                last_success_at=datetime(2026, 3, 15, 6, 20, tzinfo=UTC),
            )
        )
        session.add_all(
            [
                ApiCallLog(
                    service="ce",
                    operation="GetCostAndUsage",
                    count=3,
                    cost=Decimal("0.03"),
                    at=datetime(2026, 2, 20, tzinfo=UTC),
                ),
                ApiCallLog(
                    service="ce",
                    operation="GetCostAndUsage",
                    count=2,
                    cost=Decimal("0.02"),
                    at=datetime(2026, 3, 14, tzinfo=UTC),
                ),
                ApiCallLog(service="cloudwatch", operation="GetMetricData", count=7),
            ]
        )
        session.add_all(
            [
                Alert(fingerprint="a", kind="budget_exceeded", severity="critical", message="m"),
                Alert(
                    fingerprint="b",
                    kind="idle_gpu",
                    severity="warning",
                    message="m",
                    status="acknowledged",
                ),
                Alert(fingerprint="c", kind="idle_gpu", severity="warning", message="m"),
            ]
        )
        session.add_all(
            [
                OutboxMessage(
                    idempotency_key="k1",
                    method="chat.postMessage",
                    channel="C1",
                    payload={},
                    status="sent",
                ),
                OutboxMessage(
                    idempotency_key="k2",
                    method="chat.postMessage",
                    channel="C1",
                    payload={},
                    status="pending",
                    created_at=datetime(2026, 3, 15, 11, 58, tzinfo=UTC),
                ),
            ]
        )
        session.add(
            JobLease(
                job_id="digest",
                holder="w",
                expires_at=NOW,
                last_run_at=datetime(2026, 3, 15, 11, 0, tzinfo=UTC),
            )
        )


def test_database_figures_and_counters(session_factory):
    seed(session_factory)
    registry = Registry()
    registry.inc("llmgov_job_runs_total", {"job": "digest", "outcome": "success"})
    registry.inc("llmgov_slack_calls_total", {"method": "chat.postMessage", "status": "ok"}, 4)
    samples = parse(render_metrics(session_factory, registry, now=NOW))
    assert (
        samples[
            'llmgov_source_last_success_timestamp_seconds{scope="111122223333",source="cost_explorer"}'
        ]
        == datetime(2026, 3, 15, 6, 20, tzinfo=UTC).timestamp()
    )
    assert samples['llmgov_aws_calls_total{operation="GetCostAndUsage",service="ce"}'] == 5
    assert samples['llmgov_aws_calls_total{operation="GetMetricData",service="cloudwatch"}'] == 7
    assert samples["llmgov_cost_explorer_spend_usd_total"] == 0.05
    assert samples["llmgov_cost_explorer_spend_month_to_date_usd"] == 0.02
    assert samples['llmgov_alerts{severity="warning",status="open"}'] == 1
    assert samples['llmgov_alerts{severity="warning",status="acknowledged"}'] == 1
    assert samples['llmgov_alerts{severity="critical",status="open"}'] == 1
    assert samples['llmgov_outbox_messages{status="pending"}'] == 1
    assert samples['llmgov_outbox_messages{status="failed"}'] == 0
    assert samples["llmgov_outbox_oldest_pending_age_seconds"] == 120
    assert (
        samples['llmgov_job_last_run_timestamp_seconds{job="digest"}']
        == datetime(2026, 3, 15, 11, 0, tzinfo=UTC).timestamp()
    )
    assert samples['llmgov_job_runs_total{job="digest",outcome="success"}'] == 1
    assert samples['llmgov_slack_calls_total{method="chat.postMessage",status="ok"}'] == 4
    assert samples["llmgov_metrics_database_up"] == 1


def test_the_slack_clients_call_counts_are_included(session_factory):
    from llmgov.bot.slack_client import SlackCallStats

    stats = SlackCallStats()
    stats.record("chat.postMessage", "ok", 0.1)
    stats.record("chat.postMessage", "ratelimited", 0.1)
    registry = Registry()
    registry.inc("llmgov_slack_calls_total", {"method": "chat.postMessage", "status": "ok"})
    samples = parse(render_metrics(session_factory, registry, slack_stats=stats))
    assert samples['llmgov_slack_calls_total{method="chat.postMessage",status="ok"}'] == 2
    assert samples['llmgov_slack_calls_total{method="chat.postMessage",status="ratelimited"}'] == 1


def test_a_database_failure_still_renders_the_process_figures():
    class Broken:
        def __call__(self):
            raise RuntimeError("database is down")

    registry = Registry()
    registry.inc("llmgov_job_failures_total", {"job": "checks"})
    samples = parse(render_metrics(Broken(), registry))
    assert samples["llmgov_metrics_database_up"] == 0
    assert samples['llmgov_job_failures_total{job="checks"}'] == 1


def test_label_values_are_escaped_and_counters_are_thread_safe():
    registry = Registry()
    registry.inc("llmgov_slack_calls_total", {"method": 'we"ird\\name\n', "status": "ok"})

    def hammer() -> None:
        for _ in range(1000):
            registry.inc("llmgov_outbox_deliveries_total", {"outcome": "sent"})

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    text = render_metrics(None, registry)
    assert 'method="we\\"ird\\\\name\\n"' in text
    samples = parse(text)
    assert samples['llmgov_outbox_deliveries_total{outcome="sent"}'] == 8000


def test_flask_views_serve_the_page(session_factory):
    seed(session_factory)
    app = Flask("t")
    app.config["LLMGOV_SESSION_FACTORY"] = session_factory
    app.add_url_rule("/metrics", view_func=metrics_view)
    app.add_url_rule("/metrics2", view_func=make_metrics_view(session_factory))
    metrics.inc("llmgov_job_runs_total", {"job": "flush_outbox", "outcome": "success"})
    with app.test_client() as http:
        for path in ("/metrics", "/metrics2"):
            response = http.get(path)
            assert response.status_code == 200
            assert response.headers["Content-Type"] == metrics.CONTENT_TYPE
            samples = parse(response.get_data(as_text=True))
            assert samples['llmgov_outbox_messages{status="sent"}'] == 1

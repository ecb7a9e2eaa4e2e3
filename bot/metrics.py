"""The bot's own health in Prometheus text format (exposition format 0.0.4) for `/metrics`.

Two kinds of figures:
- counters this process keeps in a small thread-safe registry (`inc`, `set`): job runs and
  failures, Slack calls by method and status (the Slack client wrapper records them), outbox
  deliveries by outcome;
- figures read from the database at scrape time, so they are right whichever process did
  the work (web or worker): each source's last success, AWS calls and what the bot itself
  spent on Cost Explorer (`api_calls`), alerts by state, the outbox by status, each job's
  last run (`job_leases`).

Mount in Flask: `flask_app.add_url_rule("/metrics", view_func=make_metrics_view(session_factory))`
(what `llmgov serve` does through `bot.server.create_web_app(metrics_view=...)`), or set
`flask_app.config["LLMGOV_SESSION_FACTORY"]` and add `view_func=metrics_view`. Slack calls
reach `llmgov_slack_calls_total` through `record_slack_call` (bot.slack_client does this for
every call); a client that does not can be counted with `slack_stats=` instead, never both.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("llmgov.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# name -> (type, help). Names not listed render as "untyped" with a generic help line.
KNOWN: dict[str, tuple[str, str]] = {
    "llmgov_job_runs_total": (
        "counter",
        "Scheduled job runs by outcome (success, failure, skipped).",
    ),
    "llmgov_job_failures_total": ("counter", "Scheduled job runs that raised an error."),
    "llmgov_job_duration_seconds_total": ("counter", "Seconds spent running each job."),
    "llmgov_job_last_success_timestamp_seconds": (
        "gauge",
        "When each job last succeeded in this process.",
    ),
    "llmgov_job_last_run_timestamp_seconds": (
        "gauge",
        "When each job last ran in any process (job_leases).",
    ),
    "llmgov_slack_calls_total": ("counter", "Slack Web API calls by method and status."),
    "llmgov_outbox_deliveries_total": ("counter", "Outbox delivery attempts by outcome."),
    "llmgov_owner_refresh_total": ("counter", "People refreshed from Slack by outcome."),
    "llmgov_source_last_success_timestamp_seconds": (
        "gauge",
        "Each source's last successful collection.",
    ),
    "llmgov_source_last_error_timestamp_seconds": (
        "gauge",
        "Each source's last failed collection.",
    ),
    "llmgov_aws_calls_total": (
        "counter",
        "AWS API requests the bot made, by service and operation.",
    ),
    "llmgov_aws_api_cost_usd_total": (
        "counter",
        "What the bot's own AWS API requests cost, by service.",
    ),
    "llmgov_cost_explorer_spend_usd_total": (
        "counter",
        "What the bot spent on Cost Explorer requests.",
    ),
    "llmgov_cost_explorer_spend_month_to_date_usd": (
        "gauge",
        "The bot's Cost Explorer spend this month.",
    ),
    "llmgov_alerts": ("gauge", "Alerts by status and severity."),
    "llmgov_outbox_messages": ("gauge", "Outbox messages by status."),
    "llmgov_outbox_oldest_pending_age_seconds": (
        "gauge",
        "Age of the oldest pending outbox message.",
    ),
    "llmgov_metrics_database_up": ("gauge", "1 when the database answered this scrape."),
    "llmgov_answers_total": (
        "counter",
        "Answers after the ack by outcome (answered, failed, refused_busy: the pool was full).",
    ),
    "llmgov_answers_unfinished": ("gauge", "Answers queued or running on the answer pool."),
    "llmgov_charts_total": ("counter", "Charts drawn in the chart worker by outcome."),
    "llmgov_chart_worker_replacements_total": (
        "counter",
        "Chart worker processes replaced, by reason (died, timed_out).",
    ),
}
COST_EXPLORER_SERVICES = ("ce", "cost_explorer", "costexplorer")

Labels = tuple[tuple[str, str], ...]


def _labels(labels: Mapping[str, Any] | None) -> Labels:
    return tuple(sorted((str(k), str(v)) for k, v in (labels or {}).items()))


class Registry:
    """Counters and gauges kept in memory by this process."""

    def __init__(self) -> None:
        self._values: dict[str, dict[Labels, float]] = {}
        self._lock = threading.Lock()

    def inc(self, name: str, labels: Mapping[str, Any] | None = None, value: float = 1) -> None:
        with self._lock:
            series = self._values.setdefault(name, {})
            key = _labels(labels)
            series[key] = series.get(key, 0.0) + value

    def set(self, name: str, labels: Mapping[str, Any] | None = None, value: float = 0) -> None:
        with self._lock:
            self._values.setdefault(name, {})[_labels(labels)] = float(value)

    def get(self, name: str, labels: Mapping[str, Any] | None = None) -> float:
        with self._lock:
            return self._values.get(name, {}).get(_labels(labels), 0.0)

    def snapshot(self) -> dict[str, dict[Labels, float]]:
        with self._lock:
            return {name: dict(series) for name, series in self._values.items()}

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


REGISTRY = Registry()


def inc(name: str, labels: Mapping[str, Any] | None = None, value: float = 1) -> None:
    """Add `value` to a counter, e.g. inc("llmgov_slack_calls_total", {"method": m, "status": "ok"})."""
    REGISTRY.inc(name, labels, value)


def set(name: str, labels: Mapping[str, Any] | None = None, value: float = 0) -> None:
    """Set a gauge."""
    REGISTRY.set(name, labels, value)


def record_slack_call(method: str, status: str | int) -> None:
    """One Slack Web API call ("ok", an error code, or an HTTP status)."""
    inc("llmgov_slack_calls_total", {"method": method, "status": status})


# ---- exposition format -------------------------------------------------------------------


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(value)


def format_families(families: Mapping[str, Mapping[Labels, float]]) -> str:
    """Prometheus text exposition of {name: {labels: value}}, one HELP/TYPE per family."""
    lines: list[str] = []
    for name in sorted(families):
        kind, help_text = KNOWN.get(name, ("untyped", f"{name} (llmgov)"))
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in sorted(families[name].items()):
            rendered = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            lines.append(
                f"{name}{{{rendered}}} {_number(value)}" if rendered else f"{name} {_number(value)}"
            )
    return "\n".join(lines) + "\n"


def _timestamp(value: datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def database_families(
    session: Session, now: datetime | None = None
) -> dict[str, dict[Labels, float]]:
    """The figures read from the database at scrape time."""
    from llmgov.models.facts import ApiCallLog, SourceStatus
    from llmgov.models.governance import Alert, JobLease, OutboxMessage, OutboxStatus

    now = now or datetime.now(UTC)
    families: dict[str, dict[Labels, float]] = {}

    def put(name: str, labels: Mapping[str, Any], value: float | None) -> None:
        if value is not None:
            families.setdefault(name, {})[_labels(labels)] = float(value)

    for status in session.scalars(select(SourceStatus)):
        labels = {"source": status.source, "scope": status.scope}
        put(
            "llmgov_source_last_success_timestamp_seconds",
            labels,
            _timestamp(status.last_success_at),
        )
        put("llmgov_source_last_error_timestamp_seconds", labels, _timestamp(status.last_error_at))

    for service, operation, count in session.execute(
        select(ApiCallLog.service, ApiCallLog.operation, func.sum(ApiCallLog.count)).group_by(
            ApiCallLog.service, ApiCallLog.operation
        )
    ):
        put("llmgov_aws_calls_total", {"service": service, "operation": operation}, count or 0)
    for service, cost in session.execute(
        select(ApiCallLog.service, func.sum(ApiCallLog.cost)).group_by(ApiCallLog.service)
    ):
        put("llmgov_aws_api_cost_usd_total", {"service": service}, float(cost or 0))
    ce = ApiCallLog.service.in_(COST_EXPLORER_SERVICES)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    total = session.scalar(select(func.sum(ApiCallLog.cost)).where(ce))
    month = session.scalar(
        select(func.sum(ApiCallLog.cost)).where(ce, ApiCallLog.at >= month_start)
    )
    put("llmgov_cost_explorer_spend_usd_total", {}, float(total or 0))
    put("llmgov_cost_explorer_spend_month_to_date_usd", {}, float(month or 0))

    for status, severity, count in session.execute(
        select(Alert.status, Alert.severity, func.count()).group_by(Alert.status, Alert.severity)
    ):
        put("llmgov_alerts", {"status": status, "severity": severity}, count)

    counts = dict(
        session.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        ).all()
    )
    for status in OutboxStatus:
        put("llmgov_outbox_messages", {"status": status.value}, counts.get(status.value, 0))
    oldest = session.scalar(
        select(func.min(OutboxMessage.created_at)).where(
            OutboxMessage.status == OutboxStatus.PENDING.value
        )
    )
    if oldest is not None:
        oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
        put(
            "llmgov_outbox_oldest_pending_age_seconds", {}, max(0.0, (now - oldest).total_seconds())
        )
    else:
        put("llmgov_outbox_oldest_pending_age_seconds", {}, 0)

    for lease in session.scalars(select(JobLease)):
        put(
            "llmgov_job_last_run_timestamp_seconds",
            {"job": lease.job_id},
            _timestamp(lease.last_run_at),
        )
    return families


def render_metrics(
    session_factory: sessionmaker[Session] | None,
    registry: Registry | None = None,
    now: datetime | None = None,
    slack_stats: Any | None = None,
) -> str:
    """The whole `/metrics` page. A database error still renders the in-process figures.

    `slack_stats`: the Slack client's call counts (`bot.slack_client.SlackCallStats`, whose
    `snapshot()` is {method: {outcome: count}}), added to `llmgov_slack_calls_total`.
    """
    families: dict[str, dict[Labels, float]] = (registry or REGISTRY).snapshot()
    if slack_stats is not None:
        calls = families.setdefault("llmgov_slack_calls_total", {})
        for method, outcomes in slack_stats.snapshot().items():
            for outcome, count in outcomes.items():
                key = _labels({"method": method, "status": outcome})
                calls[key] = calls.get(key, 0.0) + count
    database_up = 0.0
    if session_factory is not None:
        try:
            with session_factory() as session:
                families.update(database_families(session, now))
            database_up = 1.0
        except Exception:  # a scrape must not fail because the database is down
            log.exception("metrics: could not read the database")
    families["llmgov_metrics_database_up"] = {(): database_up}
    return format_families(families)


def bearer_token_matches(authorization: str | None, token: str) -> bool:
    """`Authorization: Bearer <token>`, compared in constant time."""
    import hmac

    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def make_metrics_view(
    session_factory: sessionmaker[Session],
    slack_stats: Any | None = None,
    *,
    token: str | None = None,
) -> Callable[[], Any]:
    """A Flask view serving `render_metrics(session_factory, slack_stats=slack_stats)`.

    With `token` (LLMGOV_METRICS_TOKEN), only a request with `Authorization: Bearer <token>`
    gets the page (spend and source scopes are in it); any other gets 401."""

    def view() -> Any:
        from flask import Response, request

        if token is not None and not bearer_token_matches(
            request.headers.get("Authorization"), token
        ):
            return Response(
                "metrics need Authorization: Bearer <LLMGOV_METRICS_TOKEN>\n",
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="llmgov metrics"'},
                content_type="text/plain; charset=utf-8",
            )
        page = render_metrics(session_factory, slack_stats=slack_stats)
        return Response(page, content_type=CONTENT_TYPE)

    view.__name__ = "metrics"
    return view


def metrics_view() -> Any:
    """Flask view; reads the session factory from app.config["LLMGOV_SESSION_FACTORY"]."""
    from flask import Response, current_app

    factory = current_app.config.get("LLMGOV_SESSION_FACTORY")
    stats = current_app.config.get("LLMGOV_SLACK_STATS")
    return Response(render_metrics(factory, slack_stats=stats), content_type=CONTENT_TYPE)


def observe_job(
    job: str, outcome: str, seconds: float, finished_at: datetime | None = None
) -> None:
    """Record one job run (outcome: success, failure, skipped)."""
    inc("llmgov_job_runs_total", {"job": job, "outcome": outcome})
    if outcome == "failure":
        inc("llmgov_job_failures_total", {"job": job})
    if outcome != "skipped":
        inc("llmgov_job_duration_seconds_total", {"job": job}, seconds)
    if outcome == "success":
        stamp = finished_at or datetime.now(UTC)
        REGISTRY.set("llmgov_job_last_success_timestamp_seconds", {"job": job}, stamp.timestamp())


__all__ = [
    "CONTENT_TYPE",
    "REGISTRY",
    "Registry",
    "inc",
    "make_metrics_view",
    "metrics_view",
    "observe_job",
    "record_slack_call",
    "render_metrics",
    "set",
]

"""`llmgov serve [--socket] [--no-scheduler] [--port N]`: run the Slack app.

HTTP (default): waitress on $PORT (3000), Slack requests at /slack/events, health at
/healthz. Prometheus text at /metrics shows spend and source scopes, so it is never open on
the public port: with LLMGOV_METRICS_TOKEN set it needs `Authorization: Bearer <token>`;
with `--metrics-port N` it is served on a separate bind (`--metrics-host`, default
127.0.0.1) instead of the public port; with neither, it is off. `--socket`: Socket Mode over SLACK_APP_TOKEN, no public URL needed. Unless
`--no-scheduler`, the scheduler runs in the same process when `bot.scheduler` exists.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
from typing import Any

from slack_bolt.error import BoltError

from llmgov.bot.answers import AnswerPool
from llmgov.bot.app import build_app, install_log_redaction
from llmgov.bot.chart_worker import ChartWorker
from llmgov.bot.cli.common import migrated_engine
from llmgov.bot.metrics import make_metrics_view
from llmgov.bot.server import create_web_app, database_check, freeze_startup_objects, serve_http
from llmgov.bot.settings import Settings
from llmgov.bot.slack_client import make_client
from llmgov.models.base import make_session_factory
from llmgov.models.errors import BadInput, SourceError

log = logging.getLogger("llmgov.bot.serve")

METRICS_TOKEN_ENV = "LLMGOV_METRICS_TOKEN"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the Slack app (HTTP on $PORT, or Socket Mode)",
        description="Run the Slack app: HTTP at /slack/events (health at /healthz), "
        "or Socket Mode with --socket.",
    )
    parser.add_argument(
        "--socket", action="store_true", help="use Socket Mode (needs SLACK_APP_TOKEN)"
    )
    parser.add_argument(
        "--no-scheduler",
        action="store_true",
        help="do not run the scheduled checks in this process (run `llmgov worker` instead)",
    )
    parser.add_argument("--port", type=int, default=None, help="HTTP port (default: $PORT or 3000)")
    parser.add_argument("--host", default="0.0.0.0", help="HTTP bind address (default 0.0.0.0)")
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve /metrics on this port (and not on the public one)",
    )
    parser.add_argument(
        "--metrics-host", default="127.0.0.1", help="bind address of --metrics-port"
    )
    parser.set_defaults(handler=_serve)


def start_scheduler(
    settings: Settings, session_factory, client, charts: ChartWorker | None = None
) -> Any | None:
    """Start the in-process scheduler (`bot.scheduler.start_background`)."""
    from llmgov.bot import scheduler

    started = scheduler.start_background(
        settings=settings, session_factory=session_factory, client=client, charts=charts
    )
    log.info("scheduler started")
    return started


def _serve(args: argparse.Namespace) -> int:
    logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
    settings = Settings.from_env()
    install_log_redaction(settings)
    if args.socket and not settings.slack_app_token:
        raise BadInput(
            "--socket needs SLACK_APP_TOKEN: an app-level token (xapp-...) with the "
            "connections:write scope, from the app's Basic Information page."
        )
    engine = migrated_engine(settings.database_url)
    session_factory = make_session_factory(engine)
    client = make_client(settings)
    charts = ChartWorker().start()  # charts drawn in a process of their own
    answers = AnswerPool()
    scheduler = None
    stop_on_sigterm()
    try:
        try:
            app = build_app(
                settings,
                session_factory,
                client,
                socket_mode=args.socket,
                answers=answers,
                charts=charts,
            )
        except BoltError as error:  # auth.test at start-up rejected the token
            raise SourceError(f"Slack rejected SLACK_BOT_TOKEN: {error}") from None
        if not args.no_scheduler:
            scheduler = start_scheduler(settings, session_factory, client, charts)
        if answers.journal is not None:  # HTTP: answer what a stopped server acknowledged
            answers.journal.start_recovering(app, settings.slack_signing_secret or "")
        freeze_startup_objects()
        if args.socket:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            log.info("llmgov connecting to Slack in Socket Mode")
            SocketModeHandler(app, settings.slack_app_token).start()
        else:
            token = os.environ.get(METRICS_TOKEN_ENV) or None
            metrics = make_metrics_view(session_factory, token=token)
            if args.metrics_port:
                start_metrics_server(metrics, args.metrics_host, args.metrics_port)
            elif token is None:
                log.warning(
                    "/metrics is off: set %s (bearer token) or --metrics-port", METRICS_TOKEN_ENV
                )
            web = create_web_app(
                app,
                health_checks=(database_check(session_factory),),
                metrics_view=metrics if token and not args.metrics_port else None,
            )
            serve_http(web, args.host, args.port or settings.port)
    finally:
        # Requests are no longer taken; answer what was acknowledged, then stop the rest.
        if answers.unfinished:
            log.info("finishing %d acknowledged answers before stopping", answers.unfinished)
        answers.shutdown(wait=True)
        if scheduler is not None and hasattr(scheduler, "shutdown"):
            scheduler.shutdown()
        charts.shutdown()
        log.info("llmgov stopped")
    return 0


def start_metrics_server(view, host: str, port: int) -> None:
    """/metrics alone on its own bind (a private interface or loopback), in a daemon thread."""
    import threading

    from flask import Flask
    from waitress import create_server

    web = Flask("llmgov-metrics")
    web.add_url_rule("/metrics", endpoint="metrics", view_func=view)
    server = create_server(web, host=host, port=port, threads=2, ident="llmgov-metrics")
    threading.Thread(target=server.run, name="llmgov-metrics", daemon=True).start()
    log.info("metrics on http://%s:%d/metrics", host, port)


def stop_on_sigterm() -> None:
    """Stop on SIGTERM as on Ctrl-C. Heroku, Kubernetes and systemd stop a process with
    SIGTERM and wait (30 s by default) before SIGKILL. Python's default would die at once,
    and the answers already acknowledged would never reach their users. Now the server
    stops taking requests, finishes those answers and shuts down its workers."""

    def stop(signum: int, frame: Any) -> None:
        log.info("SIGTERM: stopping")
        raise SystemExit(0)  # waitress and Socket Mode end their loops on it

    signal.signal(signal.SIGTERM, stop)

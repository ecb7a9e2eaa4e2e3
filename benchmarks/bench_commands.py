"""How fast `/llm-cost` and `/llm-decide` answer at scale, from a signed request in to the
response out: 10,000 workloads x 400 days of daily billed cost, hourly usage for the last 14
days, on SQLite (default) or PostgreSQL (`--database-url`).

    python benchmarks/bench_commands.py [--database-url URL] [--workloads 10000] [--days 400]
        [--runs 60] [--reuse]

The requests go through the real stack: a signed HTTP POST to the WSGI app (bot/server.py),
Bolt, our listeners, SQL, the numpy core, Block Kit; the mock Slack Web API on a loopback
port captures the `response_url` answers and the chart uploads. Measured, one request at a
time (latency, not throughput):
- ack: the HTTP round trip of the slash command (Slack needs it within 3 s; floor 100 ms);
- answer: from sending the request to the mock receiving the answer at the response_url;
- with chart: to the mock receiving the answer again with the uploaded chart in it.
Printed as p50 / p99 / max per command and scope. Floors: ack within 100 ms always; answer
p99 at most 300 ms for a workload or a team, 1.5 s for `all`.

The data is generated once (`--reuse` keeps it between runs). The schema, indexes included,
is the migrations' (upgraded on every run, as `llmgov db upgrade` would). The server is set
up as `llmgov serve` does it: charts are drawn in a worker process (bot/chart_worker.py),
and after the warm-up `freeze_startup_objects()` moves start-up's objects out of the garbage
collector's sight, so its pauses do not land on the acks. Each line is followed by the
longest garbage-collection pause in this process (server and client) while it was measured:
a pause holds the GIL, so it delays whatever ack is in flight.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qsl, quote, urlencode

import numpy as np
from sqlalchemy import text

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import llmgov.commands.cost
from llmgov.bot.app import build_app
from llmgov.bot.chart_worker import ChartWorker
from llmgov.bot.server import EVENTS_PATH, create_web_app, freeze_startup_objects
from llmgov.bot.settings import Settings
from llmgov.models.base import make_engine, make_session_factory
from llmgov.models.migrate import upgrade
from tests.slack.conftest import slash_body
from tests.support.slack_mock import MockSlack

AS_OF = date(2026, 11, 20)
BILLING_LAG_DAYS = 2
TEAMS = 100  # 100 workloads a team at 10,000 workloads
SIGNING_SECRET = "bench-signing-secret"
PG_SCHEMA = "llmgov_bench_commands"  # PostgreSQL: the generated data's own schema
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
TOKENS_PER_DOLLAR = 1e6 / 0.45  # Haiku at 80% input
TRIGGER_IDS = itertools.count(1)


# ---- the data ----------------------------------------------------------------------------
def generate(engine, workloads: int, days: int, hourly_days: int, seed: int = 7) -> None:
    """Registry, daily billed cost and hourly usage, bulk-loaded (COPY on PostgreSQL)."""
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    people = max(workloads // 5, 1)
    registry = {
        "organisation": [(1, "USD", False, 180000, "{}")],
        "teams": [(t + 1, f"team-{t:03d}", f"Team {t}", None, _ts(AS_OF)) for t in range(TEAMS)],
        "people": [
            (
                p + 1,
                f"U{p:08d}",
                f"p{p}@example.com",
                f"Person {p}",
                None,
                p % 60 != 0,
                None,
                _ts(AS_OF),
            )
            for p in range(people)
        ],
    }
    budgets = rng.choice([500.0, 1000.0, 4000.0, 20000.0], size=workloads)
    registry["workloads"] = [
        (
            i + 1,
            f"wl-{i:05d}",
            f"Workload {i}",
            "bedrock",
            "discovered" if i % 50 == 0 else "active",
            i % TEAMS + 1,
            None if i % 50 == 0 else i % people + 1,
            None,
            f"feature-{i % 300}",
            f"customer-{i % 40}",
            i % 3 == 0,
            None if i % 7 == 0 else float(budgets[i]),
            "USD",
            None if i % 5 == 0 else "portable prompts",
            json.dumps({"latency_p95_ms": 1200}),
            None,
            None,
            "{}",
            "{}",
            None,
            _ts(AS_OF - timedelta(days=days)),
            _ts(AS_OF),
        )
        for i in range(workloads)
    ]
    registry["prices"] = [
        (1, "token", MODEL, "*", "per_mtok_input", 0.25, "USD", "bench", AS_OF.isoformat()),
        (2, "token", MODEL, "*", "per_mtok_output", 1.25, "USD", "bench", AS_OF.isoformat()),
        (
            3,
            "gpu_hour",
            "g6.xlarge",
            "us-east-1",
            "per_hour",
            0.8048,
            "USD",
            "bench",
            AS_OF.isoformat(),
        ),
        (
            4,
            "gpu_hour",
            "g6.12xlarge",
            "us-east-1",
            "per_hour",
            4.6016,
            "USD",
            "bench",
            AS_OF.isoformat(),
        ),
    ]
    columns = {
        "organisation": "id, currency, ml_infrastructure, people_cost_per_year, extra",
        "teams": "id, slug, name, channel_id, created_at",
        "people": "id, slack_id, email, name, tz, active, checked_at, created_at",
        "workloads": "id, slug, name, platform, status, team_id, owner_id, backup_owner_id, "
        "feature, customer, critical_path, budget_monthly, currency, exit_strategy, constraints, "
        "upstream_requests, gpu, thresholds, breaker, discovered_from, created_at, updated_at",
        "prices": "id, kind, key, region, unit, amount, currency, source, as_of",
    }
    with engine.begin() as connection:
        for table, rows in registry.items():
            _load(connection, table, columns[table], rows)

    # Daily billed cost: a level per workload, a trend, a weekly rhythm, noise.
    level = rng.lognormal(mean=3.0, sigma=1.0, size=workloads)  # median ~$20 a day
    trend = np.clip(rng.normal(0.001, 0.002, size=workloads), -0.0015, 0.004)
    first_day = AS_OF - timedelta(days=days - 1)
    billed_days = days - BILLING_LAG_DAYS
    t = np.arange(days)
    weekly = 1 + 0.15 * np.cos(2 * np.pi * (t % 7) / 7)
    cost_columns = (
        "source, series_key, day, cost, currency, is_llm, dimensions, collected_at, workload_id"
    )
    with engine.begin() as connection:
        for start in range(0, workloads, 500):
            rows = []
            block = np.arange(start, min(start + 500, workloads))
            values = level[block, None] * (1 + trend[block, None] * t) * weekly
            values *= rng.normal(1, 0.05, size=values.shape)
            for k, i in enumerate(block):
                for d in range(billed_days):
                    day = first_day + timedelta(days=d)
                    rows.append(
                        (
                            "ce",
                            f"wl-{i:05d}",
                            day.isoformat(),
                            round(float(values[k, d]), 6),
                            "USD",
                            True,
                            "{}",
                            _ts(day + timedelta(days=BILLING_LAG_DAYS)),
                            int(i) + 1,
                        )
                    )
            _load(connection, "cost_facts", cost_columns, rows)
        unattributed = [
            (
                "ce",
                f"unknown-{s}",
                (first_day + timedelta(days=d)).isoformat(),
                3.0,
                "USD",
                True,
                "{}",
                _ts(first_day + timedelta(days=d + BILLING_LAG_DAYS)),
                None,
            )
            for s in range(20)
            for d in range(billed_days)
        ]
        _load(connection, "cost_facts", cost_columns, unattributed)
    print(
        f"  cost facts: {workloads * billed_days + 20 * billed_days:,} rows "
        f"({time.perf_counter() - started:.0f} s)"
    )

    # Hourly usage for the last `hourly_days` days, with its token-based estimate.
    usage_columns = (
        "source, series_key, hour, model_id, invocations, input_tokens, output_tokens, "
        "cache_read_tokens, cache_write_tokens, client_errors, server_errors, throttles, "
        "latency_ms_p95, estimated_cost, dimensions, collected_at, workload_id"
    )
    hours = hourly_days * 24
    first_hour = datetime.combine(AS_OF - timedelta(days=hourly_days - 1), datetime.min.time(), UTC)
    diurnal = 1 + 0.6 * np.sin(2 * np.pi * (np.arange(hours) % 24 - 8) / 24)
    with engine.begin() as connection:
        for start in range(0, workloads, 250):
            rows = []
            block = np.arange(start, min(start + 250, workloads))
            day_index = days - hourly_days + np.arange(hours) // 24
            daily = level[block, None] * (1 + trend[block, None] * day_index) * weekly[day_index]
            cost = daily / 24 * diurnal * rng.normal(1.03, 0.02, size=(len(block), hours))
            for k, i in enumerate(block):
                for h in range(hours):
                    hour = first_hour + timedelta(hours=h)
                    tokens = float(cost[k, h]) * TOKENS_PER_DOLLAR
                    rows.append(
                        (
                            "cw",
                            f"wl-{i:05d}",
                            _ts(hour),
                            MODEL,
                            tokens / 1000,
                            tokens * 0.8,
                            tokens * 0.2,
                            0.0,
                            0.0,
                            1.0,
                            0.0,
                            0.0,
                            900.0,
                            round(float(cost[k, h]), 8),
                            "{}",
                            _ts(hour + timedelta(hours=1)),
                            int(i) + 1,
                        )
                    )
            _load(connection, "usage_facts", usage_columns, rows)
    print(f"  usage facts: {workloads * hours:,} rows ({time.perf_counter() - started:.0f} s)")

    alert_rows = [
        (
            f"bench-{i}",
            "spend_anomaly",
            "warning",
            "open",
            i * 37 % workloads + 1,
            100.0,
            "USD",
            f"wl-{i * 37 % workloads:05d} spent more than usual",
            "{}",
            _ts(AS_OF),
            _ts(AS_OF),
        )
        for i in range(workloads // 10)
    ]
    with engine.begin() as connection:
        _load(
            connection,
            "alerts",
            "fingerprint, kind, severity, status, workload_id, amount, "
            "currency, message, details, first_seen_at, last_seen_at",
            alert_rows,
        )
    print(f"  generated in {time.perf_counter() - started:.0f} s")


def _ts(value: date | datetime) -> str:
    """A UTC timestamp as both backends store it (SQLAlchemy's SQLite text format)."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, datetime.min.time(), UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def _load(connection, table: str, columns: str, rows: list[tuple]) -> None:
    if not rows:
        return
    raw = connection.connection.dbapi_connection
    if connection.dialect.name == "postgresql":
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([_pg(v) for v in row])
        return
    marks = ", ".join("?" for _ in columns.split(","))
    raw.cursor().executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)


def _pg(value):
    if isinstance(value, str) and len(value) == 26 and value[10] == " " and value[4] == "-":
        return value + "+00"  # timestamptz
    return value


def refresh_statistics(engine) -> None:
    """The planner statistics, and on PostgreSQL the visibility map, of a database in use.

    In production autovacuum keeps both up to date; bulk-loaded data has neither (and a test
    server may run without autovacuum), and without the visibility map PostgreSQL cannot
    answer from the covering indexes alone (index-only scans)."""
    if engine.dialect.name != "postgresql":
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        tables = engine.dialect.get_table_names(connection)
        connection.execute(text(f"VACUUM (ANALYZE) {', '.join(tables)}"))


# ---- the measurement ---------------------------------------------------------------------
def post(url: str, body: str, content_type: str = "application/x-www-form-urlencoded"):
    from slack_sdk.signature import SignatureVerifier

    ts = str(int(time.time()))
    request = urllib.request.Request(
        url,
        data=body.encode(),
        method="POST",
        headers={
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": SignatureVerifier(SIGNING_SECRET).generate_signature(
                timestamp=ts, body=body
            ),
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
        return response.status


def measure(server_url, mock: MockSlack, name: str, text_: str, user: str, answers: int = 1):
    """(ack, first answer, last answer) seconds for one slash command."""
    before = len(mock.calls_to("response_url"))
    # Slack gives every command its own trigger_id, so no two requests are signed alike (the
    # server rejects a repeated signature as a replay)
    fields = dict(parse_qsl(slash_body(text_, user, mock.response_url + "b/1/x", command=name)))
    fields["trigger_id"] = f"{next(TRIGGER_IDS)}.bench"
    started = time.time()
    status = post(server_url + EVENTS_PATH, urlencode(fields))
    acked = time.time() - started
    assert status == 200, status
    calls = mock.wait_for("response_url", before + answers, timeout=60)
    new = calls[before:]
    return acked, new[0].at - started, new[-1].at - started


class CollectionPauses:
    """The garbage collector's pauses in this process (`gc.callbacks`), in ms."""

    def __init__(self):
        self.pauses: list[float] = []
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((time.perf_counter() - self._started) * 1000)

    def take(self) -> list[float]:
        taken, self.pauses = self.pauses, []
        return taken


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def report(label: str, samples: list[tuple[float, float, float]], floor: float | None) -> None:
    ack = [s[0] * 1000 for s in samples]
    first = [s[1] * 1000 for s in samples]
    last = [s[2] * 1000 for s in samples]
    verdict = ""
    if floor is not None:
        ok = percentile(first, 99) <= floor * 1000 and max(ack) <= 100
        verdict = "ok" if ok else "MISSED"
    print(
        f"{label:<28} n={len(samples):>3}  ack p50 {statistics.median(ack):6.1f} p99 "
        f"{percentile(ack, 99):6.1f} max {max(ack):6.1f} ms | answer p50 "
        f"{statistics.median(first):7.1f} p99 {percentile(first, 99):7.1f} ms | with chart p50 "
        f"{statistics.median(last):7.1f} p99 {percentile(last, 99):7.1f} ms  {verdict}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--workloads", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--hourly-days", type=int, default=14)
    parser.add_argument("--runs", type=int, default=60, help="requests per command and scope")
    parser.add_argument("--reuse", action="store_true", help="keep existing generated data")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request

    url = args.database_url or "sqlite:///" + os.path.join(
        tempfile.gettempdir(), f"llmgov-bench-commands-{args.workloads}x{args.days}.db"
    )
    if url.startswith("postgresql"):
        # Everything lives in a schema of its own, so a shared database is never touched.
        with make_engine(url).begin() as connection:
            connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{PG_SCHEMA}"'))
        separator = "&" if "?" in url else "?"
        url = f"{url}{separator}options={quote(f'-csearch_path={PG_SCHEMA}')}"
    engine = make_engine(url)
    with engine.connect() as connection:
        tables = engine.dialect.get_table_names(connection)
        populated = (
            "workloads" in tables
            and connection.execute(text("SELECT COUNT(*) FROM workloads")).scalar()
        )
    if not (args.reuse and populated):
        print(
            f"generating {args.workloads:,} workloads x {args.days} days on {engine.url.get_backend_name()}"
        )
        if engine.dialect.name == "sqlite":
            engine.dispose()
            path = url.removeprefix("sqlite:///")
            if os.path.exists(path):
                os.remove(path)
            engine = make_engine(url)
        else:
            with engine.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{PG_SCHEMA}" CASCADE'))
                connection.execute(text(f'CREATE SCHEMA "{PG_SCHEMA}"'))
        upgrade(engine)
        generate(engine, args.workloads, args.days, args.hourly_days)
    else:
        upgrade(engine)  # reused data gets what newer migrations add (indexes, say)
    refresh_statistics(engine)
    print(f"database: {engine.url.render_as_string(hide_password=True)}")

    mock = MockSlack().start()
    settings = Settings(
        database_url=url,
        slack_bot_token="xoxb-bench",
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=mock.url,
    )
    session_factory = make_session_factory(engine)
    charts = ChartWorker().start()
    app = build_app(settings, session_factory, token_verification_enabled=False, charts=charts)
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, create_web_app(app), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server_url = f"http://127.0.0.1:{server.server_port}"

    llmgov.commands.cost.today_utc = lambda: AS_OF  # the data's "today"

    rng = random.Random(11)

    def what_if() -> str:  # billions of tokens a month: a different answer every time
        return f"{rng.uniform(0.1, 50):.2f}"

    # people whose workloads are all unowned (every 50th: "discovered") own nothing
    owners = [f"U{p:08d}" for p in range(1, max(args.workloads // 5, 2)) if p % 50]
    plans = [
        (
            "/llm-cost workload",
            "/llm-cost",
            lambda: f"wl-{rng.randrange(args.workloads):05d}",
            0.3,
            2,
        ),
        ("/llm-cost team", "/llm-cost", lambda: f"team:team-{rng.randrange(TEAMS):03d}", 0.3, 2),
        ("/llm-cost all", "/llm-cost", lambda: "all", 1.5, 2),
        ("/llm-cost (mine)", "/llm-cost", lambda: "", None, 2),
        (
            "/llm-decide workload",
            "/llm-decide",
            lambda: f"wl-{rng.randrange(args.workloads):05d}",
            0.3,
            1,
        ),
        ("/llm-decide what-if", "/llm-decide", lambda: f"tokens_per_month={what_if()}B", 0.3, 1),
        (
            "/llm-owner show workload",
            "/llm-owner",
            lambda: f"show wl-{rng.randrange(args.workloads):05d}",
            0.3,
            1,
        ),
        (
            "/llm-owner list team",
            "/llm-owner",
            lambda: f"list team:team-{rng.randrange(TEAMS):03d}",
            0.3,
            1,
        ),
        ("/llm-owner list all", "/llm-owner", lambda: "list all", 1.5, 1),
        ("/llm-owner gaps", "/llm-owner", lambda: "gaps", 1.5, 1),
    ]
    for _ in range(3):  # warm up: imports, first matplotlib figure, connection pool
        measure(server_url, mock, "/llm-cost", "wl-00001", owners[0], 2)
        measure(server_url, mock, "/llm-decide", "wl-00001", owners[0], 1)
    freeze_startup_objects()  # as `llmgov serve` does once it has started
    collections = CollectionPauses()
    print(f"\n{args.runs} requests each, one at a time; times in ms\n")
    for label, name, text_of, floor, answers in plans:
        runs = max(args.runs // 3, 10) if floor == 1.5 else args.runs
        load = os.getloadavg()[0]
        samples = [
            measure(server_url, mock, name, text_of(), rng.choice(owners), answers)
            for _ in range(runs)
        ]
        report(label, samples, floor)
        # the machine is shared: say how busy it was (2 cores; above 2, we waited for CPU)
        pauses = collections.take()
        print(
            f"{'':<28} load average {load:.1f} -> {os.getloadavg()[0]:.1f}; "
            f"{len(pauses)} collections, longest {max(pauses, default=0):.1f} ms"
        )
    server.shutdown()
    charts.shutdown()
    mock.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How fast the Slack app acknowledges slash commands while their answers wait on slow work.

    python benchmarks/bench_slack_ack.py                    # 16 workers (ours) vs 5 (Bolt's)
    python benchmarks/bench_slack_ack.py --requests 60 --slow 1.0

A real Bolt app (`bot.app.build_app`) behind the real WSGI app (`bot.server`) on a loopback
port, a migrated SQLite registry of 30 workloads, and the mock Slack Web API whose
response_url answers `--slow` seconds late (a slow downstream: each answer holds a thread
of the answer pool, `bot.answers`, that long). `--requests` signed `/llm-owner list`
commands arrive in bursts of `--burst` at once. Slack gives up on an ack after 3 s; the
figures are the ack latency (HTTP response to the command) and the time until every answer
reached the response_url. Traffic stays on 127.0.0.1; every loop is bounded.

Each command has its own response_url, as Slack's commands do: the app refuses a
signature it has already accepted (`bot/replay_guard.py`), so sending the same signed
command twice in one second would measure 401s, not acks.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from werkzeug.serving import make_server

import llmgov.bot.app
from llmgov.bot.answers import AnswerPool
from llmgov.bot.server import create_web_app
from llmgov.bot.settings import Settings
from llmgov.models.base import make_engine, make_session_factory, transaction
from llmgov.models.migrate import upgrade
from llmgov.models.registry import Person, Team, Workload
from tests.slack.conftest import SIGNING_SECRET, SlackServer, slash_body
from tests.support.slack_mock import Fault, MockSlack

SLACK_ACK_DEADLINE = 3.0


def seed(session_factory) -> None:
    with transaction(session_factory) as session:
        teams = [Team(slug=f"team-{t}", name=f"Team {t}") for t in range(5)]
        people = [Person(slack_id=f"U0BENCH{p:03d}", name=f"Person {p}") for p in range(10)]
        session.add_all(teams + people)
        for w in range(30):
            session.add(
                Workload(
                    slug=f"workload-{w:02d}",
                    name=f"Workload {w}",
                    team=teams[w % 5],
                    owner=people[w % 10] if w % 4 else None,
                )
            )


def run(workers: int, requests: int, burst: int, slow: float, database_url: str) -> dict:
    llmgov.bot.app.LISTENER_WORKERS = workers
    mock = MockSlack().start()
    session_factory = make_session_factory(make_engine(database_url))
    settings = Settings(
        database_url=database_url,
        slack_bot_token="xoxb-bench",
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=mock.url,
    )
    answers = AnswerPool()
    app = llmgov.bot.app.build_app(
        settings, session_factory, token_verification_enabled=False, answers=answers
    )
    server = make_server("127.0.0.1", 0, create_web_app(app), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    slack = SlackServer(f"http://127.0.0.1:{server.server_port}", mock.response_url + "T/1/x")
    mock.fail_next("response_url", Fault(200, delay=slow), times=requests)

    acks: list[float] = []
    failed = 0  # not a 200 (e.g. not acked in time, or refused as a replay)

    def one(number: int) -> None:
        nonlocal failed
        body = slash_body("list", "U0BENCH001", f"{slack.response_url}/{number}")
        started = time.perf_counter()
        reply = slack.post(body)
        if reply.status != 200:
            failed += 1
        acks.append(time.perf_counter() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=burst) as pool:
        for first in range(0, requests, burst):
            list(pool.map(one, range(first, min(first + burst, requests))))
    deadline = time.monotonic() + requests * slow + 60
    while len(mock.calls_to("response_url")) + failed < requests:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    answered = time.perf_counter() - started
    server.shutdown()
    app.listener_runner.listener_executor.shutdown(wait=True)
    answers.shutdown(wait=True)
    mock.stop()
    acks.sort()
    return {
        "workers": workers,
        "p50": statistics.median(acks),
        "p95": acks[int(0.95 * (len(acks) - 1))],
        "max": acks[-1],
        "late": sum(a > SLACK_ACK_DEADLINE for a in acks),
        "failed": failed,
        "all_answered_s": answered,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--burst", type=int, default=16)
    parser.add_argument("--slow", type=float, default=1.0, help="seconds each answer waits")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{directory}/bench.db"
        upgrade(make_engine(url))
        seed(make_session_factory(make_engine(url)))
        print(
            f"{args.requests} signed /llm-owner list commands, bursts of {args.burst}, "
            f"response_url {args.slow:.1f} s slow"
        )
        print(
            f"{'workers':>8} {'ack p50':>9} {'ack p95':>9} {'ack max':>9} {'>3 s':>5} "
            f"{'failed':>7} {'answered':>9}"
        )
        for workers in (5, 16):
            r = run(workers, args.requests, args.burst, args.slow, url)
            print(
                f"{r['workers']:>8} {r['p50'] * 1000:>7.0f}ms {r['p95'] * 1000:>7.0f}ms "
                f"{r['max'] * 1000:>7.0f}ms {r['late']:>5} {r['failed']:>7} "
                f"{r['all_answered_s']:>8.1f}s"
            )


if __name__ == "__main__":
    main()

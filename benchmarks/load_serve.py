"""Load on the real server: `llmgov serve --no-scheduler` as a separate process, over HTTP.

    python benchmarks/load_serve.py                          # 200 commands, then 10,000
    python benchmarks/load_serve.py --commands 200 --concurrency 50 --soak 10000
    python benchmarks/load_serve.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench

What it does:
1. a database with the demo registry (`llmgov demo --database-url ...`) and the bundled
   sample facts (`llmgov collect --source sample`), so `/llm-cost` and `/llm-decide`
   compute real answers;
2. the mock Slack Web API (tests/support/slack_mock.py) on a loopback port, standing in for
   Slack's Web API (auth.test, chart uploads...), and a small recorder for the response_urls
   (when each command's first answer arrived);
3. `llmgov serve --no-scheduler` started as a subprocess on a free loopback port
   (waitress, Bolt, the real listeners), pointed at the mock through SLACK_API_URL;
4. burst: `--commands` signed slash commands (`/llm-cost`, `/llm-owner`, `/llm-decide`),
   `--concurrency` in flight at once (threads + http.client). Slack gives up on an ack
   after 3 s: prints how many were acknowledged within that, the p50/p99 ack latency, and
   how long the full answers took to reach the response_url;
5. soak: `--soak` more commands from `--soak-concurrency` people, each waiting for their
   answer before asking again (the server acks at once, so a sender that only waited for
   the ack would flood the answer queue until the server asks people to come back later);
   the server's resident memory (VmRSS from /proc) read before, every tenth of the way,
   and after, once every answer has arrived.

Everything stays on 127.0.0.1; every loop and wait is bounded. Exit status 1 when an ack
took longer than 3 s, a command was not answered or an answer said something went wrong.
Answers asking to come back later (the server's answer queue was full) are counted too.

Experiments: `--listener-workers N`, `--answer-workers N` and `--http-threads N` start the
server with Bolt's listener pool (llmgov.bot.app.LISTENER_WORKERS, 16), the answer pool
(llmgov.bot.answers.ANSWER_WORKERS, 4) or waitress's threads (llmgov.bot.server.HTTP_THREADS, 8) changed,
to see what a different setting would do; the default runs the product as is.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode, urlsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from slack_sdk.signature import SignatureVerifier  # noqa: E402

from tests.support.slack_mock import MockSlack  # noqa: E402

SIGNING_SECRET = "load-benchmark-signing-secret"
BOT_TOKEN = "xoxb-0000000000-0000000000-loadbenchmarktoken"
ADMIN = "U0ANA0001"  # Ana Silva in the demo registry
SLACK_ACK_DEADLINE = 3.0
START_TIMEOUT = 120.0
CLI = "import sys; from llmgov.bot.cli import main; sys.exit(main())"

# (command, text, user): what people ask, in the proportions of a busy afternoon.
BURST_MIX = [
    ("/llm-cost", "team:search 30d", "U0ANA0001"),
    ("/llm-cost", "search-summaries 90d", "U0BEN0002"),
    ("/llm-cost", "", "U0CHL0003"),  # my workloads
    ("/llm-cost", "all mtd", ADMIN),
    ("/llm-owner", "list team:support", "U0DEV0004"),
    ("/llm-owner", "show search-summaries", "U0EMI0005"),
    ("/llm-owner", "gaps", ADMIN),
    ("/llm-owner", "list", "U0FAR0006"),
    ("/llm-decide", "support-llama", "U0GRE0007"),
    ("/llm-decide", "tokens_per_month=2B input_share=0.8", "U0HAN0008"),
    ("/llm-owner", "claim nothing-here", "U0IVA0009"),  # a clear error
    ("/llm-cost", "team:nope", "U0JUL0010"),  # a clear error
]
# The soak repeats the registry and error paths with some reports: enough work per
# request to exercise every layer, little enough that 10,000 take minutes, not an hour.
SOAK_MIX = [
    ("/llm-owner", "list team:search", "U0ANA0001"),
    ("/llm-owner", "show search-summaries", "U0BEN0002"),
    ("/llm-owner", "help", "U0CHL0003"),
    ("/llm-cost", "help", "U0DEV0004"),
    ("/llm-cost", "search-summaries 7d", "U0EMI0005"),
    ("/llm-decide", "tokens_per_month=500M", "U0FAR0006"),
    ("/llm-owner", "assign search-summaries", "U0GRE0007"),  # a clear error
    ("/llm-cost", "7x", "U0HAN0008"),  # a clear error
]


def run_cli(args: list[str], env: dict[str, str], *, check: bool = True) -> bool:
    """Run `llmgov ARGS` in a child process from the repository (as `llmgov` would)."""
    done = subprocess.run(
        [sys.executable, "-c", CLI, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0 and check:
        raise SystemExit(f"llmgov {' '.join(args)} failed:\n{done.stderr}")
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        print(f"llmgov {' '.join(args)} failed ({last}); loading the registry file instead")
    return done.returncode == 0


def _experiment(
    listener_workers: int | None, answer_workers: int | None, http_threads: int | None
) -> str:
    """The child's Python: the CLI, with the product's settings changed if asked."""
    if not (listener_workers or answer_workers or http_threads):
        return CLI
    return (
        "import sys; from benchmarks.load_serve import serve_experiment; "
        f"sys.exit(serve_experiment({listener_workers}, {answer_workers}, {http_threads}))"
    )


def serve_experiment(
    listener_workers: int | None, answer_workers: int | None, http_threads: int | None
) -> int:
    """In the server process: change pool sizes, then run the CLI. A what-if for the
    figures, not how the product runs."""
    import llmgov.bot.answers
    import llmgov.bot.app
    import llmgov.bot.server
    from llmgov.bot.cli import main as cli_main

    if listener_workers:
        llmgov.bot.app.LISTENER_WORKERS = listener_workers
    if answer_workers:
        llmgov.bot.answers.ANSWER_WORKERS = answer_workers
    if http_threads:  # serve_http's default argument is bound when it is defined
        llmgov.bot.server.serve_http.__defaults__ = (http_threads,)
    return cli_main(sys.argv[1:])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants: the server, and the forkserver and chart worker it starts
    (bot/chart_worker.py). Linux /proc; just `pid` elsewhere."""
    children: dict[int, list[int]] = defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # it exited while we looked
        children[parent].append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo.extend(children.get(tree[-1], ()))
    return tree


def rss_kib(pid: int) -> int | None:
    """Resident memory of `pid` and its descendants in KiB (Linux /proc), or None elsewhere.
    Pages a forked child still shares with its parent count twice: an upper bound."""
    total = None
    for member in process_tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total = (total or 0) + int(line.split()[1])
        except OSError:
            continue
    return total


def cpu_seconds(pid: int) -> float | None:
    """CPU time of `pid` and its descendants, with their children that have exited (a chart
    worker is replaced every bot.chart_worker.CHARTS_PER_PROCESS charts)."""
    total = None
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
        except (OSError, IndexError, ValueError):
            continue
        total = (total or 0) + ticks / os.sysconf("SC_CLK_TCK")
    return total


@dataclass
class Sent:
    status: int
    ack_seconds: float
    sent_at: float  # wall clock, to match the answer's arrival at the mock
    path: str  # where its answer arrives, under the response_url server


class Client:
    """Signed slash commands to one server; one HTTP connection per thread."""

    def __init__(self, port: int, answers: Answers):
        self.port = port
        self.answers = answers
        self.phase = "warmup"
        self.verifier = SignatureVerifier(SIGNING_SECRET)
        self.local = threading.local()
        self.ids = itertools.count()

    def _connection(self) -> http.client.HTTPConnection:
        if getattr(self.local, "connection", None) is None:
            self.local.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        return self.local.connection

    def send(self, command: tuple[str, str, str]) -> Sent:
        name, text, user = command
        number = next(self.ids)
        path = f"/{self.phase}/{number}"
        body = urlencode(
            {
                "token": "legacy",
                "team_id": "T0LOAD",
                "team_domain": "northwind",
                "channel_id": "C0GOVERN01",
                "channel_name": "llm-governance",
                "user_id": user,
                "user_name": user.lower(),
                "command": name,
                "text": text,
                "api_app_id": "A0LLMGOV",
                "response_url": f"{self.answers.base}{path[1:]}",
                "trigger_id": f"{number}.1.load",
            }
        )
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": self.verifier.generate_signature(timestamp=timestamp, body=body),
        }
        sent_at, started = time.time(), time.perf_counter()
        for attempt in (1, 2):  # a kept-alive connection the server closed: reconnect once
            try:
                connection = self._connection()
                connection.request("POST", "/slack/events", body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                return Sent(response.status, time.perf_counter() - started, sent_at, path)
            except (http.client.HTTPException, OSError):
                self.local.connection = None
                if attempt == 2:
                    return Sent(0, time.perf_counter() - started, sent_at, path)
        raise AssertionError("unreachable")

    def send_and_wait(self, command: tuple[str, str, str]) -> Sent:
        """Send, then wait (bounded) for the answer: a person waiting for their answer."""
        sent = self.send(command)
        if sent.status == 200:
            self.answers.wait_for_path(sent.path, timeout=60)
        return sent


class Answers:
    """Stands in for Slack's response_url endpoints: records when each command's first
    answer arrives (a `/llm-cost` answer is replaced once more when its chart is ready)."""

    def __init__(self) -> None:
        self.first: dict[str, float] = {}
        self.posts = 0
        self.errors = 0  # answers saying "something went wrong"
        self.busy = 0  # answers asking to come back later (the answer queue was full)
        self.lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.posts += 1
                    receiver.first.setdefault(self.path, time.time())
                    receiver.lock.notify_all()
                    receiver.errors += b"Something went wrong" in body
                    receiver.busy += b"please ask again in a minute" in body
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def count(self, prefix: str) -> int:
        with self.lock:
            return sum(1 for path in self.first if path.startswith(prefix))

    def arrivals(self, prefix: str) -> list[float]:
        with self.lock:
            return [at for path, at in self.first.items() if path.startswith(prefix)]

    def wait_for_path(self, path: str, timeout: float) -> bool:
        with self.lock:
            return self.lock.wait_for(lambda: path in self.first, timeout)

    def wait(self, prefix: str, count: int, timeout: float) -> int:
        """Wait (bounded) until `count` commands under `prefix` were answered."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.count(prefix) < count:
            time.sleep(0.05)
        return self.count(prefix)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def burst(client: Client, commands: int, concurrency: int) -> bool:
    client.phase = "burst"
    plan = [BURST_MIX[i % len(BURST_MIX)] for i in range(commands)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(client.send, plan))
    sending = time.perf_counter() - started
    answered = client.answers.wait("/burst/", commands, timeout=600)
    acks = [r.ack_seconds for r in results]
    ok = sum(1 for r in results if r.status == 200)
    in_time = sum(1 for r in results if r.status == 200 and r.ack_seconds <= SLACK_ACK_DEADLINE)
    first_sent = min(r.sent_at for r in results)
    waits = sorted(at - first_sent for at in client.answers.arrivals("/burst/"))
    print(f"\nburst: {commands} signed slash commands, {concurrency} in flight")
    print(
        f"  HTTP 200: {ok}/{commands}; acknowledged within {SLACK_ACK_DEADLINE:.0f} s: "
        f"{in_time}/{commands}"
    )
    print(
        f"  ack latency: p50 {percentile(acks, 0.5) * 1000:.0f} ms, "
        f"p90 {percentile(acks, 0.9) * 1000:.0f} ms, p99 {percentile(acks, 0.99) * 1000:.0f} ms, "
        f"max {max(acks) * 1000:.0f} ms; all acked after {sending:.1f} s"
    )
    if waits:
        print(
            f"  answers at the response_url: {answered}/{commands}; half within "
            f"{percentile(waits, 0.5):.1f} s of the first command, all within {waits[-1]:.1f} s"
        )
    return in_time == commands and answered >= commands


def soak(client: Client, pid: int, total: int, concurrency: int) -> bool:
    client.phase = "soak"
    samples = [(0, rss_kib(pid))]
    cpu_before = cpu_seconds(pid)
    step = max(1, total // 10)
    statuses: Counter[int] = Counter()
    slow = 0
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for first in range(0, total, step):
            chunk = [SOAK_MIX[i % len(SOAK_MIX)] for i in range(first, min(first + step, total))]
            for result in pool.map(client.send_and_wait, chunk):
                statuses[result.status] += 1
                slow += result.ack_seconds > SLACK_ACK_DEADLINE
            samples.append((first + len(chunk), rss_kib(pid)))
    elapsed = time.perf_counter() - started
    answered = client.answers.wait("/soak/", total, timeout=900)
    time.sleep(1)  # the last chart replacements
    samples.append((total, rss_kib(pid)))  # once the answers have finished
    cpu_after = cpu_seconds(pid)
    print(
        f"\nsoak: {total} more commands, {concurrency} people each waiting for their answer, "
        f"{elapsed:.0f} s "
        f"({total / elapsed:.0f} commands/s)"
    )
    print(
        f"  HTTP statuses: {dict(statuses)}; acks over {SLACK_ACK_DEADLINE:.0f} s: {slow}; "
        f"answered: {answered}/{total}"
    )
    if cpu_before is not None and cpu_after is not None:
        print(
            f"  server CPU (with its chart worker): {cpu_after - cpu_before:.0f} s "
            f"({(cpu_after - cpu_before) / total * 1000:.1f} ms per command)"
        )
    if samples[0][1] is None:
        print("  memory: /proc is not available here; no RSS figures")
        return statuses[200] == total and answered >= total
    print(
        "  server RSS with its chart worker (MiB) after N commands: "
        + ", ".join(f"{n}: {kib / 1024:.1f}" for n, kib in samples)
    )
    start_kib, end_kib = samples[0][1], samples[-1][1]
    second_half = [kib for n, kib in samples if n >= total // 2]
    print(
        f"  before {start_kib / 1024:.1f} MiB, after {end_kib / 1024:.1f} MiB "
        f"({(end_kib - start_kib) / 1024:+.1f} MiB, "
        f"{(end_kib - start_kib) / max(start_kib, 1) * 100:+.1f}%); "
        f"second half range {(max(second_half) - min(second_half)) / 1024:.1f} MiB"
    )
    return statuses[200] == total and answered >= total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--commands", type=int, default=200, help="burst size (default 200)")
    parser.add_argument("--concurrency", type=int, default=50, help="in flight (default 50)")
    parser.add_argument("--soak", type=int, default=10_000, help="soak size (default 10000)")
    parser.add_argument("--soak-concurrency", type=int, default=20)
    parser.add_argument("--database-url", help="default: a SQLite file in a temp directory")
    parser.add_argument("--no-sample-data", action="store_true", help="registry only")
    parser.add_argument("--listener-workers", type=int, help="experiment: Bolt listener pool")
    parser.add_argument("--answer-workers", type=int, help="experiment: answer pool")
    parser.add_argument("--http-threads", type=int, help="experiment: waitress threads")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="llmgov-load-"))
    database_url = args.database_url or f"sqlite:///{workdir / 'load.db'}"
    env = {**os.environ, "PYTHONPATH": str(REPO), "DATABASE_URL": database_url}
    print(f"database: {urlsplit(database_url).scheme}; logs: {workdir}")
    started = time.perf_counter()
    if not run_cli(["demo", "--database-url", database_url], env, check=False):
        run_cli(["db", "upgrade"], env)
        run_cli(["registry", "import", str(REPO / "bot" / "demo" / "registry.yaml")], env)
    if not args.no_sample_data:
        run_cli(["collect", "--source", "sample"], env)
    print(
        f"demo registry{'' if args.no_sample_data else ' and sample facts'} loaded in "
        f"{time.perf_counter() - started:.1f} s"
    )

    mock = MockSlack().start()
    port = free_port()
    server_env = {
        **env,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": mock.url,
        "LLMGOV_ADMINS": ADMIN,
        "LLMGOV_CHANNEL": "C0GOVERN01",
    }
    log_path = workdir / "serve.log"
    child = _experiment(args.listener_workers, args.answer_workers, args.http_threads)
    with log_path.open("wb") as log:
        command = [sys.executable, "-c", child, "serve", "--no-scheduler", "--host", "127.0.0.1"]
        server = subprocess.Popen(
            [*command, "--port", str(port)], cwd=REPO, env=server_env, stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if server.poll() is not None:
                raise SystemExit(f"llmgov serve exited:\n{log_path.read_text()}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("llmgov serve did not become healthy in time")
            time.sleep(0.2)
        if child != CLI:
            print(
                f"EXPERIMENT: listener workers {args.listener_workers or 'as is'}, "
                f"answer workers {args.answer_workers or 'as is'}, "
                f"HTTP threads {args.http_threads or 'as is'}"
            )
        print(
            f"llmgov serve pid {server.pid} on 127.0.0.1:{port}, "
            f"RSS {(rss_kib(server.pid) or 0) / 1024:.1f} MiB at start"
        )

        answers = Answers()
        client = Client(port, answers)
        for command in BURST_MIX:  # warm-up: imports, caches, the lazy auth.test
            client.send(command)
        answers.wait("/warmup/", len(BURST_MIX), timeout=120)

        ok = burst(client, args.commands, args.concurrency)
        if args.soak:
            ok = soak(client, server.pid, args.soak, args.soak_concurrency) and ok
        violations = mock.state.contract_violations
        print(
            f"\nWeb API contract violations: {len(violations)}; "
            f"'something went wrong' answers: {answers.errors}; "
            f"'ask again in a minute' answers: {answers.busy}"
        )
        return 0 if ok and not violations and not answers.errors else 1
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        mock.stop()


if __name__ == "__main__":
    sys.exit(main())

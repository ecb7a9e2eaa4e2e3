"""Memory of `llmgov serve` under one huge unsigned request (docs/reliability.md, finding 1).

Starts the real server (`llmgov serve --no-scheduler`) as a process on a loopback port,
on a SQLite file with the demo registry and the mock Slack Web API, then sends one
unsigned POST of `--megabytes` (300 by default) to /slack/events, streamed from a small
buffer so the client itself stays small. It prints the server's status, the peak resident
memory (VmHWM) of the server and its child processes before and after, and the size of
its log.

    python benchmarks/bench_big_request.py [--megabytes 300] [--chunked]
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.slack_mock import MockSlack  # noqa: E402

SIGNING_SECRET = "big-request-benchmark-signing-secret"
BOT_TOKEN = "xoxb-0000000000-0000000000-bigrequestbenchmark"
CLI = "import sys; from llmgov.bot.cli import main; sys.exit(main())"
CHUNK = b"token=legacy&response_url=https%3A%2F%2Fhooks.slack.com%2Fx&text=" + b"A" * 65_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def children_of(pid: int) -> list[int]:
    tree, todo = [], [pid]
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(parent, []).append(int(stat.parent.name))
    while todo:
        tree.append(todo.pop())
        todo.extend(parents.get(tree[-1], ()))
    return tree


def status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory(pid: int) -> tuple[float, float]:
    """(peak RSS of the server process, peak RSS summed over it and its children) in MiB."""
    tree = children_of(pid)
    return status_kib(pid, "VmHWM") / 1024, sum(status_kib(p, "VmHWM") for p in tree) / 1024


def send_big(port: int, megabytes: int, chunked: bool) -> tuple[str, float]:
    """POST `megabytes` MB of form body with a forged signature; (status, seconds)."""
    total = megabytes * 1_000_000
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(int(time.time())),
        "X-Slack-Signature": "v0=" + "0" * 64,
    }
    if chunked:
        headers["Transfer-Encoding"] = "chunked"
    else:
        headers["Content-Length"] = str(total)
    try:
        connection.putrequest("POST", "/slack/events")
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        sent = 0
        while sent < total:
            piece = CHUNK[: min(len(CHUNK), total - sent)]
            if chunked:
                connection.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            else:
                connection.send(piece)
            sent += len(piece)
        if chunked:
            connection.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed before the body was all sent: the point
    try:
        response = connection.getresponse()
        status = f"{response.status} {response.read(200).decode(errors='replace')!r}"
    except (OSError, http.client.HTTPException) as error:
        status = f"no response ({type(error).__name__})"
    finally:
        connection.close()
    return status, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--megabytes", type=int, default=300)
    parser.add_argument("--chunked", action="store_true", help="no Content-Length: streamed")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="llmgov-big-request-"))
    database_url = f"sqlite:///{workdir / 'big.db'}"
    env = {**os.environ, "DATABASE_URL": database_url}
    subprocess.run(
        [sys.executable, "-c", CLI, "demo", "--database-url", database_url],
        cwd=REPO,
        env=env,
        capture_output=True,
        check=True,
        timeout=600,
    )
    mock = MockSlack().start()
    port = free_port()
    server_env = {
        **env,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": mock.url,
    }
    log_path = workdir / "serve.log"
    with log_path.open("wb") as log:
        command = [sys.executable, "-c", CLI, "serve", "--no-scheduler", "--host", "127.0.0.1"]
        server = subprocess.Popen(
            [*command, "--port", str(port)], cwd=REPO, env=server_env, stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise SystemExit(f"llmgov serve exited:\n{log_path.read_text()}")
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                probe.request("GET", "/healthz")
                if probe.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("llmgov serve did not become healthy in time")
            time.sleep(0.2)
        time.sleep(1.0)  # let start-up settle
        before, before_tree = memory(server.pid)
        log_before = log_path.stat().st_size
        status, seconds = send_big(port, args.megabytes, args.chunked)
        time.sleep(1.0)
        after, after_tree = memory(server.pid)
        log_after = log_path.stat().st_size
        kind = "chunked" if args.chunked else "with Content-Length"
        print(f"one unsigned POST of {args.megabytes} MB ({kind}) to /slack/events")
        print(f"  answer: {status} after {seconds:.2f} s")
        print(f"  server peak RSS: before {before:.1f} MiB, after {after:.1f} MiB")
        print(f"  with its children: before {before_tree:.1f} MiB, after {after_tree:.1f} MiB")
        print(f"  serve.log grew by {log_after - log_before:,} bytes")
        longest = max((len(line) for line in log_path.read_bytes().splitlines()), default=0)
        print(f"  longest log line: {longest:,} characters")
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        mock.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Real `llmgov serve` processes for the hardening tests: several at once on one database,
SIGKILLed and started again."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.hardening.support import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, post, signed_headers
from tests.support.processes import children_of

CLI = "import sys; from llmgov.bot.cli import main; sys.exit(main())"
EVENTS = "/slack/events"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class ServeProcess:
    """`llmgov serve --no-scheduler` on a loopback port, its output in `log`."""

    database_url: str
    slack_api_url: str
    log: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> ServeProcess:
        self.port = self.port or free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LLMGOV_"))}
        env.update(
            DATABASE_URL=self.database_url,
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_APP_TOKEN=APP_TOKEN,
            SLACK_API_URL=self.slack_api_url,
            LLMGOV_ADMINS="U0HADMIN01",
            **self.extra_env,
        )
        command = [sys.executable, "-c", CLI, "serve", "--no-scheduler", "--host", "127.0.0.1"]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port)], env=env, stdout=out, stderr=out
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as reply:
                    if reply.status == 200:
                        return self
            except OSError:
                pass
            if self.process.poll() is not None:
                raise AssertionError(f"llmgov serve exited:\n{self.log.read_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"llmgov serve did not come up:\n{self.log.read_text()}")
            time.sleep(0.2)

    def send(self, body: str, headers: dict[str, str] | None = None, content_type: str = ""):
        headers = headers or signed_headers(body, int(time.time()))
        kind = content_type or "application/x-www-form-urlencoded"
        return post(self.url + EVENTS, body, headers, kind)

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: nothing runs after it."""
        if self.process is None:
            return
        children = children_of(self.process.pid)
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        for pid in children:  # the chart worker exits by itself; do not wait for it
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None

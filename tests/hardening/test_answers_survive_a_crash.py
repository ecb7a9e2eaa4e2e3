"""Nothing acknowledged is lost (docs/reliability.md, finding 7).

Red-teamed: after 40 signed commands were acknowledged and the server was SIGKILLed, 36
answers never arrived; the same for acknowledged clicks. Now every command and click is
recorded before its ack (`bot/answer_journal.py`) and a restarted server answers what the
killed one left.

The test runs the real `llmgov serve`. Its answers go to a response_url receiver that counts
each answer when it arrives (as Slack would) and, while the first server lives, does not
reply: the first answers are delivered but their senders stay blocked, so the rest wait in
the queue. SIGKILL, a new server on the same database: every one of the N acknowledged
commands and clicks is answered, and none twice.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llmgov.bot.blocks.owner import CLAIM_ACTION_ID
from tests.hardening.conftest import ADMIN, BACKUP, MEMBER, NEWBIE, OWNER, STRANGER
from tests.hardening.processes import ServeProcess
from tests.hardening.support import button_payload, interaction_body, slash_body

pytestmark = pytest.mark.slow  # whole processes: -m 'not slow' skips them

COMMANDS = ["help", "list", "list team:search", "show search-summaries"]
PEOPLE = [OWNER, BACKUP, MEMBER, STRANGER]


class Receiver:
    """Answers at response_urls: recorded on arrival; replied to only once `release`d."""

    def __init__(self) -> None:
        self.arrived: list[str] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.arrived.append(self.path)
                receiver.release.wait(120)
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # its sender was killed

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def count(self) -> int:
        with self.lock:
            return len(self.arrived)

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()


@pytest.fixture
def receiver():
    receiving = Receiver()
    yield receiving
    receiving.stop()


def test_every_acknowledged_command_and_click_is_answered_once_after_a_sigkill(
    engine, database_url, slack_mock, world, tmp_path, receiver
):
    server = ServeProcess(database_url, slack_mock.url, tmp_path / "serve.log").start()
    try:
        sent: list[str] = []
        for round_ in range(4):
            for index, text in enumerate(COMMANDS):
                path = f"/answer/command-{round_}-{index}"
                body = slash_body("/llm-owner", text, PEOPLE[index], receiver.url + path)
                assert server.send(body).status == 200  # acknowledged
                sent.append(path)
        for index, person in enumerate([*PEOPLE, ADMIN, NEWBIE]):
            path = f"/answer/click-{index}"
            click = button_payload(CLAIM_ACTION_ID, world.unowned, person, receiver.url + path)
            assert server.send(interaction_body(click)).status == 200  # acknowledged
            sent.append(path)

        deadline = time.monotonic() + 30  # the answer pool's first answers arrive, then block
        while receiver.count() < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        before_kill = receiver.count()
        assert 1 <= before_kill < len(sent), before_kill

        server.kill()
        receiver.release.set()
        server.start()  # recovers what the killed process left

        deadline = time.monotonic() + 90
        while receiver.count() < len(sent) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2.0)  # an answer sent twice would have arrived by now
    finally:
        server.stop()
    arrivals = Counter(receiver.arrived)
    assert sorted(arrivals) == sorted(sent), (len(arrivals), len(sent))
    assert [path for path, times in arrivals.items() if times > 1] == []


def test_the_journal_reruns_only_what_never_began_sending(session_factory, session):
    """Rows left by a gone process: queued and never sent are re-run; one whose POST began
    (Slack may have it), one answered in the listener thread (never queued) and one
    answered are not; rows finished over a day ago are deleted."""
    from datetime import timedelta

    from sqlalchemy import select

    from llmgov.bot.answer_journal import RETENTION, AnswerJournal, _now
    from llmgov.models.replay import PendingAnswer

    gone = AnswerJournal(session_factory, holder="another-host:1")
    for name in ("queued", "sending", "inline", "answered", "old"):
        gone.record(f"https://hooks.example/{name}", "text=x&command=/llm-owner", "form")
    for name in ("queued", "sending", "answered", "old"):
        gone.queued(f"https://hooks.example/{name}")
    gone.sending("https://hooks.example/sending")
    gone.answered("https://hooks.example/answered")
    gone.answered("https://hooks.example/old")
    with session_factory() as setup, setup.begin():
        for row in setup.scalars(select(PendingAnswer)):
            row.lease_until = _now() - timedelta(seconds=1)  # the other host's lease ran out
            if row.response_url.endswith("/old"):
                row.created_at = _now() - RETENTION - timedelta(minutes=1)

    dispatched: list[str] = []

    class App:
        def dispatch(self, request):
            dispatched.append(request.raw_body)

    assert AnswerJournal(session_factory, holder="here:2").recover(App(), "secret") == 1
    assert len(dispatched) == 1
    left = set(session.scalars(select(PendingAnswer.response_url)))
    assert "https://hooks.example/old" not in left and len(left) == 4
    # a second replica finds nothing left to take
    assert AnswerJournal(session_factory, holder="there:3").recover(App(), "secret") == 0

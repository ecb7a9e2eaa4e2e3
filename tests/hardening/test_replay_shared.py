"""Replay protection shared by replicas and restarts (docs/reliability.md, finding 11).

Red-teamed: the same bytes were accepted again 10 s after a restart, and a second decision
row was written. Now two real `llmgov serve` processes share one database (PostgreSQL with
TEST_DATABASE_URL, else a SQLite file): a request accepted by one is refused by the other,
and by the first after a SIGKILL and a restart.
"""

from __future__ import annotations

import time

import pytest

from tests.hardening.conftest import OWNER
from tests.hardening.processes import ServeProcess
from tests.hardening.support import signed_headers, slash_body

pytestmark = pytest.mark.slow  # whole processes: -m 'not slow' skips them


@pytest.fixture
def two_servers(engine, database_url, slack_mock, world, tmp_path):
    servers = [
        ServeProcess(database_url, slack_mock.url, tmp_path / f"serve-{name}.log")
        for name in ("a", "b")
    ]
    try:
        yield [server.start() for server in servers]
    finally:
        for server in servers:
            server.stop()


def test_a_request_accepted_by_one_replica_is_refused_by_the_other_and_after_a_restart(
    two_servers, slack_mock
):
    first, second = two_servers
    response_url = slack_mock.response_url + "T0HARDEN1/1/replay"
    body = slash_body("/llm-owner", "help", OWNER, response_url)
    headers = signed_headers(body, int(time.time()))

    assert first.send(body, headers).status == 200
    assert second.send(body, headers).status == 401  # a replay, though B never saw it
    fresh = slash_body("/llm-owner", "list", OWNER, response_url)
    assert second.send(fresh).status == 200  # B itself serves
    slack_mock.wait_for("response_url", 2, timeout=30)  # both answered before the kill

    first.kill()
    first.start()  # the same port, a new process: its memory is empty
    assert first.send(body, headers).status == 401
    assert first.send(slash_body("/llm-owner", "help", OWNER, response_url)).status == 200
    slack_mock.wait_for("response_url", 3, timeout=30)
    time.sleep(1.0)  # a replay that ran would answer by now
    answered = [c for c in slack_mock.state.calls if c.method == "response_url"]
    assert len(answered) == 3  # help, list, help signed anew: the replays ran nothing

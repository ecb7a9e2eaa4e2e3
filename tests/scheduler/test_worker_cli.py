"""`llmgov worker`: --list, --once JOB, and bad settings, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from llmgov.governance.outbox import enqueue
from llmgov.models.base import transaction

REPO = Path(__file__).resolve().parents[2]


def llmgov(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from llmgov.bot.cli import main; sys.exit(main())",
            *args,
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_once_flushes_the_outbox_with_json_logs_and_no_secret(
    database_url, session_factory, slack_mock
):
    with transaction(session_factory) as session:
        enqueue(
            session, key="k1", method="chat.postMessage", channel="C0GOV", payload={"text": "a"}
        )
        enqueue(
            session, key="k2", method="chat.postMessage", channel="U0ANA0001", payload={"text": "b"}
        )
    token = "xoxb-worker-secret-123"
    result = llmgov(
        "worker",
        "--once",
        "flush_outbox",
        env={
            "DATABASE_URL": database_url,
            "SLACK_BOT_TOKEN": token,
            "SLACK_API_URL": slack_mock.url,
        },
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["job"] == "flush_outbox" and summary["outcome"] == "success"
    assert summary["detail"]["sent"] == 2
    assert [m["text"] for m in slack_mock.all_messages()] == ["a", "b"]
    for line in result.stderr.splitlines():
        json.loads(line)  # structured logs only
    assert token not in result.stderr


def test_list_and_bad_settings(database_url):
    listed = llmgov("worker", "--list", env={"DATABASE_URL": database_url})
    assert listed.returncode == 0
    assert "digest" in listed.stdout and "flush_outbox" in listed.stdout
    bad = llmgov("worker", "--list", env={"LLMGOV_GAPS_HOUR": "25"})
    assert bad.returncode == 2
    assert "LLMGOV_GAPS_HOUR='25' is not an hour" in bad.stderr

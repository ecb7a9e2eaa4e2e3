"""`llmgov ask` and `llmgov serve`, run as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from llmgov.bot.cli import main
from llmgov.bot.cli import serve as serve_cli
from tests.owner.factories import BACKUP, NEWBIE, OWNER, STRANGER, build_registry, workload
from tests.slack import fake_scheduler
from tests.slack.conftest import BOT_TOKEN, SIGNING_SECRET, SlackServer
from tests.support.processes import HAS_PROC, children_of, running


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_ask_list_prints_readable_text(engine, session, capsys):
    registry = build_registry(session)
    code, out, err = run(capsys, "ask", "/llm-owner list team:search")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "Workloads of team search · 4 workloads, 1 without an owner"
    assert f"{registry.owned} — Search result summaries" in lines
    assert f"owner @{OWNER} · backup @{BACKUP} · team search · bedrock · $4,000/month" in lines
    assert "⚠️ owner has left, no budget, no exit strategy" in lines
    assert "<@" not in out and "*" not in out  # plain text, not mrkdwn


def test_ask_json_prints_the_message(engine, session, capsys):
    build_registry(session)
    code, out, _ = run(capsys, "ask", "/llm-owner list", "--format", "json")
    assert code == 0
    message = json.loads(out)
    assert message["text"].startswith("Workloads: 5 workloads")
    assert message["blocks"][0] == {
        "text": {"text": "*Workloads* · 5 workloads, 2 without an owner", "type": "mrkdwn"},
        "type": "section",
    }
    assert len(message["blocks"]) == 6


def test_ask_show_and_help(engine, session, capsys):
    registry = build_registry(session)
    code, out, _ = run(capsys, "ask", f"/llm-owner show {registry.owned}")
    assert code == 0
    assert out.startswith(f"{registry.owned}\n{'=' * len(registry.owned)}\n")
    assert f"  Owner: @{OWNER}" in out
    code, out, _ = run(capsys, "ask", "llm-owner")  # the slash is optional; no text = help
    assert code == 0 and "/llm-owner claim SLUG" in out


def test_ask_changes_need_a_user_and_use_it(engine, session, capsys):
    registry = build_registry(session)
    code, out, err = run(capsys, "ask", f"/llm-owner claim {registry.unowned}")
    assert code == 2 and out == ""
    assert "say who you are with --user U123" in err
    code, out, _ = run(capsys, "ask", f"/llm-owner claim {registry.unowned}", "--user", NEWBIE)
    assert code == 0 and out.startswith(f"✅ You now own {registry.unowned}.")
    assert workload(session, registry.unowned).owner.slack_id == NEWBIE


def test_ask_errors_and_refusals_exit_2(engine, session, capsys):
    registry = build_registry(session)
    code, out, _ = run(capsys, "ask", "/llm-owner frob")
    assert code == 2 and "For example: `/llm-owner list team:search`" in out
    code, out, _ = run(capsys, "ask", f"/llm-owner retire {registry.owned}", "--user", STRANGER)
    assert code == 2 and out.startswith("🚫 Not done: only a governance admin can retire")
    code, _, err = run(capsys, "ask", "/llm-nope list")
    assert code == 2 and "unknown command '/llm-nope'" in err
    code, _, err = run(capsys, "ask", "/llm-owner list", "--user", "ana")
    assert code == 2 and "is not a Slack user id" in err


def test_ask_on_an_unmigrated_database_says_what_to_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
    code, _, err = run(capsys, "ask", "/llm-owner list")
    assert code == 2 and "llmgov db upgrade" in err


# ---- serve --------------------------------------------------------------------------------


def test_start_scheduler_starts_the_in_process_scheduler(monkeypatch):
    from llmgov.bot import scheduler

    monkeypatch.setattr(scheduler, "start_background", fake_scheduler.start_background)
    fake_scheduler.STARTED.clear()
    handle = serve_cli.start_scheduler("settings", "factory", "client", "charts")
    assert fake_scheduler.STARTED == [
        {
            "settings": "settings",
            "session_factory": "factory",
            "client": "client",
            "charts": "charts",
        }
    ]
    assert handle is not None


LLMGOV = [sys.executable, "-c", "import sys; from llmgov.bot.cli import main; sys.exit(main())"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


METRICS_TOKEN = "metrics-token-for-tests-0123456789"


def serve_env(slack_mock, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LLMGOV_"))}
    env.update(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack_mock.url,
        LLMGOV_ADMINS="U0ADMIN01",
    )
    env.update(extra)
    return env


def test_serve_runs_the_app_over_http(engine, database_url, session, slack_mock):
    registry = build_registry(session)
    port = free_port()
    process = subprocess.Popen(
        [*LLMGOV, "serve", "--no-scheduler", "--host", "127.0.0.1", "--port", str(port)],
        env=serve_env(slack_mock, database_url, LLMGOV_METRICS_TOKEN=METRICS_TOKEN),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    server = SlackServer(f"http://127.0.0.1:{port}", slack_mock.response_url + "T/1/a")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(server.url + "/healthz", timeout=2) as reply:
                    assert json.loads(reply.read()) == {"ok": True}
                    break
            except OSError:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "llmgov serve did not come up"
                time.sleep(0.2)
        assert server.command(f"claim {registry.unowned}", NEWBIE).status == 200
        answer = slack_mock.wait_for("response_url")[0].args
        assert answer["text"] == f"✅ You now own *{registry.unowned}*."
        assert server.command("list", NEWBIE, secret="wrong").status == 401
        with pytest.raises(urllib.error.HTTPError) as refused:  # no token: spend stays private
            urllib.request.urlopen(server.url + "/metrics", timeout=5)
        assert refused.value.code == 401
        authorised = urllib.request.Request(
            server.url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        )
        with urllib.request.urlopen(authorised, timeout=5) as reply:
            assert reply.headers["Content-Type"].startswith("text/plain")
            page = reply.read().decode()
        assert 'llmgov_slack_calls_total{method="auth.test",status="ok"} 1' in page
        children = children_of(process.pid)  # the chart worker's forkserver
        assert children or not HAS_PROC
    finally:
        process.send_signal(signal.SIGTERM)  # how platforms stop a process
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "SIGTERM: stopping" in stderr and "llmgov stopped" in stderr
    deadline = time.monotonic() + 15
    while any(running(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(running(pid) for pid in children)  # the chart processes stopped with it
    assert workload(session, registry.unowned).owner.slack_id == NEWBIE
    assert "auth.test" in [c.method for c in slack_mock.state.calls]  # token checked at start
    assert "listening on http://127.0.0.1" in stderr
    assert "no scheduler" not in stderr  # --no-scheduler: not even looked for
    assert BOT_TOKEN not in stderr and SIGNING_SECRET not in stderr


@pytest.mark.parametrize(
    ("args", "extra", "message"),
    [
        (["--socket"], {}, "--socket needs SLACK_APP_TOKEN"),
        ([], {"SLACK_SIGNING_SECRET": ""}, "SLACK_SIGNING_SECRET is not set"),
        ([], {"SLACK_BOT_TOKEN": ""}, "SLACK_BOT_TOKEN is not set"),
    ],
)
def test_serve_refuses_to_start_without_what_it_needs(
    engine, database_url, slack_mock, monkeypatch, capsys, args, extra, message
):
    for name, value in serve_env(slack_mock, database_url, **extra).items():
        monkeypatch.setenv(name, value)
    code, _, err = run(capsys, "serve", "--no-scheduler", *args)
    assert code == 2
    assert message in err
    assert slack_mock.state.calls == []  # refused before talking to Slack

"""No day left unexamined: a first import whose spike is three days before its last day
gives `spend_anomaly` from `llmgov check`, and a second run does not repeat it."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from llmgov.bot.cli import main
from tests.collectors.test_ledger_sources import (  # noqa: F401 - the `chat` fixture
    FOCUS_HEADER,
    chat,
    focus,
    write,
)

LAST = dt.date(2026, 11, 26)
SPIKE = LAST - dt.timedelta(days=3)


def check(capsys, *extra: str) -> list[dict]:
    status = main(["check", "--format", "json", "--as-of", LAST.isoformat(), *extra])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    return [f for f in json.loads(captured.out) if f["kind"] == "spend_anomaly"]


@pytest.mark.usefixtures("chat")
def test_a_late_spike_of_a_first_import_is_reported_once(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.setenv("LLMGOV_CHANNEL", "C0GOVERN01")
    days = [LAST - dt.timedelta(days=i) for i in range(60)][::-1]
    rows = [focus(day, 600 if day == SPIKE else 100) for day in days]
    assert main(["import-billing", write(tmp_path / "f.csv", FOCUS_HEADER, rows)]) == 0
    capsys.readouterr()
    assert check(capsys, "--dry-run")  # a dry run sees it, and moves no watermark
    [found] = check(capsys)
    assert found["workload"] == "chat"
    assert found["details"]["day"] == f"on {SPIKE.isoformat()}"
    assert found["details"]["actual"] == 600
    assert check(capsys) == []  # nothing new arrived: nothing repeated

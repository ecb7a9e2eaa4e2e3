"""Dates that mean what users think: `--as-of` answers from every fact now stored for days
up to it (also after a later import), `--known-at` is the audit cut by collection time,
`llmgov ask` takes both, and a future date is refused."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from llmgov.bot.cli import main
from tests.collectors.test_ledger_sources import (  # noqa: F401 - the `chat` fixture
    FOCUS_HEADER,
    OCTOBER,
    chat,
    focus,
    write,
)

pytestmark = pytest.mark.usefixtures("chat")


def run(capsys, *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def october(capsys, tmp_path, chat):  # noqa: F811 - needs the workload first
    path = write(tmp_path / "oct.csv", FOCUS_HEADER, [focus(day, 100) for day in OCTOBER])
    assert run(capsys, "import-billing", path)[0] == 0


def total(capsys, *args: str) -> float:
    status, out, err = run(capsys, "cost", "chat", *args, "--format", "json")
    assert status == 0, err
    return json.loads(out)["total"]


@pytest.mark.usefixtures("october")
def test_as_of_reads_history_imported_later(capsys):
    # imported today, asked about a day in October: the facts are there
    assert total(capsys, "mtd", "--as-of", "2026-10-20") == 2000
    assert total(capsys, "2026-10-01..2026-10-10", "--as-of", "2026-10-31") == 1000


@pytest.mark.usefixtures("october")
def test_known_at_is_the_audit_cut(capsys):
    # before the import nothing was known; the answer says so rather than $0 of spend
    status, out, _ = run(
        capsys, "cost", "chat", "mtd", "--as-of", "2026-10-20", "--known-at", "2026-10-21T00:00"
    )
    assert status == 0
    assert "No spend data has arrived yet" in out
    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
    stamp = now.isoformat(timespec="seconds")
    with pytest.raises(SystemExit) as exit_:
        main(["cost", "chat", "mtd", "--as-of", "2026-10-20", "--known-at", stamp])
    assert exit_.value.code == 2
    assert "is in the future" in capsys.readouterr().err


@pytest.mark.usefixtures("october")
def test_ask_takes_as_of_and_known_at(capsys):
    status, out, err = run(capsys, "ask", "/llm-cost chat mtd", "--as-of", "2026-10-20")
    assert status == 0, err
    assert "Spend, month to date: $2,000" in out
    status, out, _ = run(
        capsys, "ask", "/llm-cost chat mtd", "--as-of", "2026-10-20", "--known-at", "2026-10-21"
    )
    assert status == 0 and "No spend data has arrived yet" in out
    status, _, err = run(capsys, "ask", "/llm-owner list", "--as-of", "2026-10-20")
    assert status == 2 and "apply to /llm-cost" in err


def test_a_future_date_is_refused(capsys):
    tomorrow = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)).isoformat()
    for command in (["cost", "chat"], ["check", "--dry-run"], ["ask", "/llm-cost chat"]):
        with pytest.raises(SystemExit) as exit_:
            main([*command, "--as-of", tomorrow])
        assert exit_.value.code == 2
        assert "is in the future" in capsys.readouterr().err

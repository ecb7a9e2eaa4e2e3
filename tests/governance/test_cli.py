"""`llmgov check`, `llmgov digest` and `llmgov gaps` through the real argument parser."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select

from llmgov.bot.cli import main
from llmgov.models.governance import Alert, OutboxMessage


def _world(session, registry):
    ana = registry.person("U0ANA0001", "Ana")
    team = registry.team("search", "C0SEARCH01")
    w = registry.workload("search", owner=ana, team=team, budget_monthly=Decimal("100"))
    registry.costs(w, date(2026, 11, 1), [60, 60])
    session.commit()


def _count(session_factory, model) -> int:
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_check_json_prints_the_findings_list(session, registry, session_factory, capsys):
    _world(session, registry)
    code = main(["check", "--dry-run", "--format", "json", "--as-of", "2026-11-02"])
    assert code == 0
    findings = json.loads(capsys.readouterr().out)
    assert [(f["kind"], f["severity"], f["amount"]) for f in findings] == [
        ("budget_exceeded", "critical", 20.0)
    ]
    assert _count(session_factory, Alert) == 0  # a dry run writes nothing


def test_check_text_dry_run_shows_the_post(session, registry, capsys):
    _world(session, registry)
    assert main(["check", "--dry-run", "--as-of", "2026-11-02"]) == 0
    out = capsys.readouterr().out
    assert "[critical] budget_exceeded search ($20.00): search has spent $120" in out
    assert "Would send 1 Slack message(s)." in out
    assert "--- chat.postMessage to C0SEARCH01" in out
    assert "[Acknowledge] [Snooze 7 days] [Show cost]" in out


def test_check_without_token_queues_and_says_so(
    session, registry, session_factory, capsys, monkeypatch
):
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    _world(session, registry)
    assert main(["check", "--as-of", "2026-11-02"]) == 0
    captured = capsys.readouterr()
    assert "1 message(s) queued; SLACK_BOT_TOKEN is not set" in captured.err
    assert _count(session_factory, Alert) == 1
    assert _count(session_factory, OutboxMessage) == 1
    assert main(["check", "--as-of", "2026-11-02"]) == 0  # nothing new the second time
    assert _count(session_factory, OutboxMessage) == 1


def test_check_delivers_before_exiting(session, registry, slack_mock, monkeypatch, capsys):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_API_URL", slack_mock.url)
    _world(session, registry)
    assert main(["check", "--as-of", "2026-11-02"]) == 0
    [post] = slack_mock.channel_messages("C0SEARCH01")
    assert post["text"].startswith("[critical] Budget exceeded · search")
    assert "Delivered: 1 sent, 0 failed." in capsys.readouterr().out


def test_digest_and_gaps_dry_runs(session, registry, capsys, monkeypatch):
    monkeypatch.setenv("LLMGOV_CHANNEL", "C0GOVERN01")
    _world(session, registry)
    assert main(["digest", "--dry-run", "--owner", "U0ANA0001", "--as-of", "2026-11-02"]) == 0
    out = capsys.readouterr().out
    assert "--- chat.postMessage to U0ANA0001 (digest:U0ANA0001:2026-W45)" in out
    assert "files.upload_v2" in out
    assert main(["gaps", "--dry-run", "--format", "json", "--as-of", "2026-11-02"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["dry_run"] is True
    assert data["messages"][0]["channel"] == "C0GOVERN01"
    assert [row["kind"] for row in data["review"]["rows"]] == []  # owned, budgeted, with exit


def test_bad_owner_is_exit_2_with_a_message(session, registry, capsys):
    _world(session, registry)
    assert main(["digest", "--dry-run", "--owner", "nobody"]) == 2
    assert "neither a Slack user id" in capsys.readouterr().err


def test_check_dry_run_after_a_real_run_that_created_alerts(
    session, registry, session_factory, capsys, monkeypatch
):
    """A dry run that would change existing alerts (here: resolve November's budget alert
    once December starts) reads them before its rollback: no DetachedInstanceError."""
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    _world(session, registry)
    assert main(["check", "--as-of", "2026-11-02"]) == 0
    assert _count(session_factory, Alert) == 1
    capsys.readouterr()
    assert main(["check", "--dry-run", "--as-of", "2026-12-05"]) == 0
    out = capsys.readouterr().out
    assert "resolved" in out.lower()
    with session_factory() as session:
        [alert] = session.scalars(select(Alert)).all()
        assert alert.status == "open"  # the dry run changed nothing
    assert main(["check", "--dry-run", "--format", "json", "--as-of", "2026-12-05"]) == 0
    json.loads(capsys.readouterr().out)


def test_an_owner_known_only_by_email_is_not_linked_not_left(
    session, registry, capsys, monkeypatch
):
    from llmgov.models.registry import Person

    monkeypatch.setenv("LLMGOV_CHANNEL", "C0GOVERN01")
    bea = Person(email="bea@example.com", name="Bea", active=True)
    session.add(bea)
    session.flush()
    w = registry.workload("notes", owner=bea)  # no budget: a gap row in the review
    registry.costs(w, date(2026, 11, 1), [60, 60])
    session.commit()
    assert main(["gaps", "--dry-run", "--as-of", "2026-11-02"]) == 0
    out = capsys.readouterr().out
    assert "Bea (not linked to Slack)" in out
    assert "(left)" not in out


def test_a_digest_on_stale_data_says_so_and_gives_no_change(session, registry, capsys):
    _world(session, registry)  # spend on 1 and 2 Nov only
    assert main(["digest", "--dry-run", "--owner", "U0ANA0001", "--as-of", "2026-11-20"]) == 0
    out = capsys.readouterr().out
    assert "Billing data through 2 Nov (18 days old)" in out
    assert "against the week before" not in out and "-100%" not in out
    assert (
        main(
            [
                "digest",
                "--dry-run",
                "--format",
                "json",
                "--owner",
                "U0ANA0001",
                "--as-of",
                "2026-11-20",
            ]
        )
        == 0
    )
    [digest] = json.loads(capsys.readouterr().out)["digests"]
    assert digest["data_through"] == "2026-11-02"
    assert (digest["week_start"], digest["week_end"]) == ("2026-11-09", "2026-11-15")

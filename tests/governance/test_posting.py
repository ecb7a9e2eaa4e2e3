"""The posting policy, through `llmgov check --dry-run`: a registry gap with no money at stake
is not posted (the gap review and the digest list it), the minimum amount to post is a
setting, and a flood of new alerts to one channel becomes one grouped summary."""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal

from llmgov.bot.cli import main


def posts(capsys) -> tuple[list[tuple[str, str]], str]:
    assert main(["check", "--dry-run", "--as-of", "2026-11-02"]) == 0
    out = capsys.readouterr().out
    return re.findall(r"^--- chat\.postMessage to (\S+) \((\S+)\)", out, re.MULTILINE), out


def test_a_zero_dollar_registry_gap_is_not_posted(session, registry, capsys, monkeypatch):
    monkeypatch.setenv("LLMGOV_CHANNEL", "C0GOVERN01")
    registry.workload("idle-experiment")  # no owner, no budget, no spend
    session.commit()
    assert main(["check", "--dry-run", "--format", "json", "--as-of", "2026-11-02"]) == 0
    kinds = {f["kind"] for f in json.loads(capsys.readouterr().out)}
    assert "unowned_workload" in kinds  # still a finding: the gap review lists it
    sent, _ = posts(capsys)
    assert sent == []


def test_the_minimum_amount_to_post_is_a_setting(session, registry, capsys, monkeypatch):
    ana = registry.person("U0ANA0001", "Ana")
    team = registry.team("search", "C0SEARCH01")
    w = registry.workload(
        "search", owner=ana, team=team, budget_monthly=Decimal("100"), exit_strategy="x"
    )
    registry.costs(w, date(2026, 11, 1), [60, 60])  # $20 over budget
    session.commit()
    sent, _ = posts(capsys)
    assert [channel for channel, _ in sent] == ["C0SEARCH01"]
    monkeypatch.setenv("LLMGOV_THRESHOLD_POST_MIN_AMOUNT", "50")
    sent, _ = posts(capsys)
    assert sent == []


def test_a_flood_to_one_channel_becomes_one_summary(session, registry, capsys):
    ana = registry.person("U0ANA0001", "Ana")
    team = registry.team("search", "C0SEARCH01")
    for index in range(12):
        w = registry.workload(
            f"search-{index:02d}",
            owner=ana,
            team=team,
            budget_monthly=Decimal("100"),
            exit_strategy="x",
        )
        registry.costs(w, date(2026, 11, 1), [60, 60 + index])
    session.commit()
    sent, out = posts(capsys)
    assert len(sent) == 1
    assert sent[0][0] == "C0SEARCH01" and sent[0][1].startswith("alerts:summary:C0SEARCH01")
    assert "12 new alerts in this run" in out and "and 7 more" in out
    # the largest at stake comes first
    assert out.index("search-11") < out.index("search-10")

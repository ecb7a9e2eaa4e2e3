"""`llmgov demo`: the whole loop on the bundled sample, every section with real content,
the same output twice, the numbers matching the database, and the README's first command.

The demo runs twice on the session's test database (a SQLite file, or PostgreSQL when
TEST_DATABASE_URL is set), once per module: it takes a few seconds.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, or_, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from llmgov.bot.cli import main
from llmgov.bot.demo.database import empty_tables
from llmgov.bot.demo.loop import DECIDE_WORKLOAD, DIGEST_OWNER
from llmgov.collectors.sample_data import SAMPLE_END
from llmgov.governance.registry_file import import_registry, parse_registry
from llmgov.models.base import make_engine, make_session_factory, transaction
from llmgov.models.facts import CostFact
from llmgov.models.migrate import upgrade
from llmgov.models.registry import SourceSetting, Workload

HEADINGS = (
    "Registry: 30 workloads in 10 teams",
    "Ownership gaps: 14 workloads need attention",
    "Collected: the sample's 28 Sep 2026 – 26 Nov 2026 (no AWS)",
    "Checks as of 26 Nov 2026:",
    "Weekly digest: the DM Chloé Martin (@U0CHL0003) gets",
    "Ownership-gap review:",
    "/llm-cost all (as of 26 Nov 2026",
    f"/llm-decide {DECIDE_WORKLOAD} ",
    "Next:",
)
OTHER_REGISTRY = """
organisation: {name: Acme Rockets, currency: USD}
teams: [{slug: rockets, name: Rockets}]
workloads:
  - {slug: launch-copy, platform: bedrock, team: rockets}
"""


def sections(output: str) -> dict[str, str]:
    """The demo's top-level sections by heading (a heading is underlined with `=`)."""
    lines = output.splitlines()
    found: dict[str, str] = {}
    starts = [
        i
        for i in range(len(lines) - 1)
        if lines[i] and not lines[i].startswith(" ") and lines[i + 1] == "=" * len(lines[i])
    ]
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else len(lines)
        found[lines[start]] = "\n".join(lines[start + 2 : end])
    return found


def section(output: str, prefix: str) -> str:
    matches = [body for title, body in sections(output).items() if title.startswith(prefix)]
    assert len(matches) == 1, (prefix, list(sections(output)))
    return matches[0]


def dollars(text_: str) -> Decimal:
    return Decimal(text_.replace("$", "").replace(",", ""))


@dataclass
class DemoOutput:
    first: str
    second: str
    err: str
    session_factory: sessionmaker[Session]  # on the demo database, as the demo left it


@pytest.fixture(scope="module")
def demo(_schema_engine, database_url) -> Iterator[DemoOutput]:
    """The demo, run twice through `bot.cli.main` on the test database; emptied afterwards."""
    try:
        first, err = _run_main(["demo", "--database-url", database_url])
        second, _ = _run_main(["demo", "--database-url", database_url])
        # not the `session_factory` fixture: its teardown empties the tables after each test
        yield DemoOutput(first, second, err, make_session_factory(_schema_engine))
    finally:
        with _schema_engine.begin() as connection:
            empty_tables(connection)


def _run_main(argv: list[str]) -> tuple[str, str]:
    """`bot.cli.main(argv)`, which must exit 0; its stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    assert code == 0, err.getvalue() + out.getvalue()[-3000:]
    return out.getvalue(), err.getvalue()


def test_every_section_is_printed_in_order_and_twice_the_same(demo):
    assert demo.err == ""
    titles = list(sections(demo.first))
    positions = []
    for heading in HEADINGS:
        matching = [i for i, title in enumerate(titles) if title.startswith(heading)]
        assert matching, (heading, titles)
        positions.append(matching[0])
    assert positions == sorted(positions)
    assert demo.first.startswith("llmgov demo: database ")
    assert "as of 26 Nov 2026" in demo.first.splitlines()[0]
    # a fresh start every run: the same registry import, alert ids and numbers
    assert demo.second == demo.first


def test_collected_section_counts_the_sample_and_its_attribution(demo):
    body = section(demo.first, "Collected:")
    assert "sample_focus_bedrock.csv: 1,140 rows, 960 of them LLM" in body
    assert re.search(r"10,080 Bedrock usage rows over 7 model series", body)
    assert "4,320 GPU instance-hours on 3 instances" in body
    # the untagged Haiku account: unattributed, with its amount equal to the facts'
    match = re.search(r"^Unattributed: (\$[\d,.]+) \(", body, re.MULTILINE)
    assert match, body
    with demo.session_factory() as session:
        unattributed = session.scalar(
            select(func.sum(CostFact.cost)).where(
                CostFact.workload_id.is_(None), CostFact.is_llm.is_(True)
            )
        )
        discovered = session.scalar(
            select(Workload.discovered_from).where(Workload.slug == "marketing-copy")
        )
    assert dollars(match.group(1)) == Decimal(str(unattributed)).quantize(Decimal("0.01")) > 0
    assert "Claude 3 Haiku (Amazon Bedrock Edition) in account 444455556666" in body
    # every sample workload lands on a registered one, except the tag nobody registered
    for slug in ("support-llama", "support-assistant", "catalog-enrichment", "search-summaries"):
        assert re.search(rf"^  {slug} +\S.* rule +\$[\d,]+\.\d\d$", body, re.MULTILINE), slug
    assert discovered == "tag:llm-workload=marketing-copy"
    assert "marketing-copy: from tag:llm-workload=marketing-copy" in body


def test_alerts_name_their_owner_and_the_money_at_stake(demo, database_url, monkeypatch):
    title = next(t for t in sections(demo.first) if t.startswith("Checks as of"))
    findings, posted = map(int, re.findall(r"(\d+) (?:findings|alerts)", title))
    body = section(demo.first, "Checks as of")
    rows = [line for line in body.splitlines() if re.match(r"^  (critical|warning|info) ", line)]
    assert len(rows) == posted > 0
    idle = next(line for line in rows if " idle_gpu " in line)
    assert "support-llama" in idle and "@U0DEV0004 Dev Patel" in idle
    assert re.search(r"\$[\d,]+\.\d\d", idle) and "#C0SUPPORT1" in idle
    assert any("owner_inactive" in line and "(left)" in line for line in rows)
    # the first alerts in full, as Slack shows them: mention and money
    assert "--- as posted in #C0SUPPORT1:" in body
    assert "@U0DEV0004: support-llama" in body and "Money at stake: $" in body

    # `llmgov check --dry-run --as-of` (the next steps) finds the same, on the demo database
    monkeypatch.setenv("DATABASE_URL", database_url)
    out, _ = _run_main(
        ["check", "--dry-run", "--as-of", SAMPLE_END.isoformat(), "--format", "json"]
    )
    checked = json.loads(out)
    assert len(checked) == findings
    assert {"idle_gpu", "budget_projected_overrun", "owner_inactive", "unowned_workload"} <= {
        finding["kind"] for finding in checked
    }


def test_digest_and_gap_review_are_printed(demo):
    digest = section(demo.first, "Weekly digest:")
    assert "support-assistant" in digest
    assert re.search(r"\$[\d,]+", digest)
    gaps = section(demo.first, "Ownership-gap review:")
    assert "owner has left" in gaps
    assert "owner Nora Kim (left)" in gaps  # doc-translation's owner left the company
    assert "marketing-copy" in gaps and "Unattributed" in gaps
    assert "[Claim] [Assign…]" in gaps


def test_cost_answer_total_equals_the_cost_facts_of_its_period(demo):
    body = section(demo.first, "/llm-cost all")
    match = re.search(r"Spend, last 30 days: (\$[\d,]+\.\d\d)", body)
    assert match, body[:1000]
    first, last = SAMPLE_END - timedelta(days=29), SAMPLE_END
    with demo.session_factory() as session:
        total = session.scalar(
            select(func.sum(CostFact.cost)).where(
                CostFact.day >= first,
                CostFact.day <= last,
                or_(CostFact.is_llm.is_(True), CostFact.workload_id.is_not(None)),
            )
        )
    assert dollars(match.group(1)) == Decimal(str(total)).quantize(Decimal("0.01"))
    assert "support-assistant · @U0CHL0003" in body


def test_decide_answer_compares_bedrock_with_self_hosting(demo):
    body = section(demo.first, f"/llm-decide {DECIDE_WORKLOAD}")
    assert re.search(r"Bedrock: \$[\d,]+ a month", body)
    assert re.search(r"Self-hosted: \$[\d,]+ a month", body)
    assert "Break-even:" in body
    assert "Stay on Bedrock" in body  # below the break-even, no self-hosting criterion holds


def test_next_steps_work_on_the_demo_database(demo, database_url, monkeypatch):
    body = section(demo.first, "Next:")
    shown = make_url(database_url).render_as_string(hide_password=True)
    assert f"export DATABASE_URL={shown}" in body
    assert f"llmgov digest --dry-run --as-of 2026-11-26 --owner {DIGEST_OWNER}" in body
    suggested = re.search(r'llmgov ask "(/llm-cost team:support \d{4}-\d{2})"', body)
    assert suggested, body
    monkeypatch.setenv("DATABASE_URL", database_url)
    out, _ = _run_main(["ask", suggested.group(1)])
    assert "support-assistant" in out and "support-llama" in out


def test_another_day_generates_the_sample_ending_then(tmp_path):
    url = f"sqlite:///{tmp_path / 'other-day.db'}"
    out, _ = _run_main(["demo", "--database-url", url, "--as-of", "2027-02-10"])
    assert "as of 10 Feb 2027" in out.splitlines()[0]
    assert "Collected: the sample's 13 Dec 2026 – 10 Feb 2027 (no AWS)" in sections(out)
    assert any(title.startswith("Checks as of 10 Feb 2027:") for title in sections(out))
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            days = session.execute(select(func.min(CostFact.day), func.max(CostFact.day))).one()
            config = session.scalar(
                select(SourceSetting.config).where(SourceSetting.name == "sample")
            )
    finally:
        engine.dispose()
    assert tuple(days) == (date(2026, 12, 13), date(2027, 2, 10))
    assert config == {"end": "2027-02-10"}  # `llmgov collect` on this database agrees


def test_a_database_with_another_registry_is_refused_and_left_alone(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'acme.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with transaction(make_session_factory(engine)) as session:
        import_registry(session, parse_registry(OTHER_REGISTRY, "acme.yaml"))

    assert main(["demo", "--database-url", url]) == 2

    err = capsys.readouterr().err
    assert "1 workloads of organisation 'Acme Rockets', not the demo's" in err
    assert "--database-url sqlite:///llmgov-demo.db" in err
    with make_session_factory(engine)() as session:
        assert session.scalars(select(Workload.slug)).all() == ["launch-copy"]
    engine.dispose()


def test_a_database_of_another_application_is_refused_untouched(tmp_path, capsys):
    path = tmp_path / "invoices.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE invoices (id INTEGER PRIMARY KEY)"))

    assert main(["demo", "--database-url", f"sqlite:///{path}"]) == 2

    assert "holds tables that are not llmgov's (invoices)" in capsys.readouterr().err
    with engine.connect() as connection:
        tables = connection.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))
        assert [row[0] for row in tables] == ["invoices"]
    engine.dispose()


def test_an_as_of_day_out_of_range_is_bad_input_before_any_write(tmp_path, capsys):
    path = tmp_path / "never.db"

    assert main(["demo", "--database-url", f"sqlite:///{path}", "--as-of", "1999-12-31"]) == 2

    assert "--as-of 1999-12-31 is out of range" in capsys.readouterr().err
    assert not path.exists()
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--database-url", f"sqlite:///{path}", "--as-of", "26/11/2026"])
    assert exit_.value.code == 2
    assert "'26/11/2026' is not a date; write it as YYYY-MM-DD" in capsys.readouterr().err
    assert not path.exists()


def test_the_readme_first_command_runs_from_any_directory(tmp_path):
    """`llmgov demo`, the installed console script, in a new directory: its default database
    appears there and every section is printed."""
    script = Path(sys.executable).with_name("llmgov")
    assert script.exists(), f"the console script is not installed next to {sys.executable}"
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "LLMGOV_PRICE_OVERRIDES")
    }
    done = subprocess.run(
        [str(script), "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "llmgov-demo.db").exists()
    titles = list(sections(done.stdout))
    for heading in HEADINGS:
        assert any(title.startswith(heading) for title in titles), heading
    assert "export DATABASE_URL=sqlite:///llmgov-demo.db" in done.stdout

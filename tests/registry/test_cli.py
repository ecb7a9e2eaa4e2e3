"""`llmgov registry import|export` and `llmgov demo` through `bot.cli.main`."""

from __future__ import annotations

import yaml

from llmgov.bot.cli import main
from llmgov.bot.cli.demo import run as run_demo
from llmgov.governance.registry_view import list_workloads
from llmgov.models.base import make_engine, transaction
from tests.registry.support import BASE_REGISTRY, audit_events, snapshot


def test_import_prints_the_changes_and_exits_0(engine, session_factory, write_file, capsys):
    path = write_file(BASE_REGISTRY)

    assert main(["registry", "import", str(path)]) == 0

    out = capsys.readouterr().out
    assert out.startswith("registry.yaml: created 12, changed 0\n")
    assert "  + team search: Search\n" in out
    assert (
        "  + workload fraud-scoring: sagemaker, no team, no owner, budget 250.5 EUR/month, 1 rule(s), experiment\n"
        in out
    )
    assert snapshot(session_factory)[0][:3] == (2, 3, 4)  # teams, people, workloads

    assert main(["registry", "import", str(path)]) == 0
    assert (
        capsys.readouterr().out
        == "registry.yaml: no changes; the registry already matches the file\n"
    )


def test_import_dry_run_writes_nothing(engine, session_factory, write_file, capsys):
    empty = snapshot(session_factory)

    assert main(["registry", "import", str(write_file(BASE_REGISTRY)), "--dry-run"]) == 0

    assert "would create 12, would change 0 (dry run: nothing written)" in capsys.readouterr().out
    assert snapshot(session_factory) == empty


def test_invalid_file_exits_2_with_messages_on_stderr(engine, session_factory, write_file, capsys):
    path = write_file(BASE_REGISTRY.replace("platform: sagemaker", "platform: gpu"), "teams.yaml")

    assert main(["registry", "import", str(path)]) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(
        "llmgov registry: teams.yaml was rejected (1 problem); nothing was written."
    )
    assert (
        "teams.yaml: workloads[3] (fraud-scoring).platform: unknown platform 'gpu'" in captured.err
    )
    assert audit_events(session_factory) == []


def test_export_to_stdout_and_to_a_file(base, session_factory, tmp_path, capsys):
    capsys.readouterr()
    assert main(["registry", "export"]) == 0
    printed = capsys.readouterr().out
    assert yaml.safe_load(printed)["teams"][0] == {
        "slug": "search",
        "name": "Search",
        "channel": "C0SEARCH01",
    }

    target = tmp_path / "out.yaml"
    assert main(["registry", "export", "--output", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == printed
    assert f"registry written to {target}" in capsys.readouterr().err

    # and back in: nothing changes
    assert main(["registry", "import", str(target)]) == 0
    assert "no changes" in capsys.readouterr().out


def test_export_to_an_unwritable_place_is_bad_input(base, tmp_path, capsys):
    assert main(["registry", "export", "--output", str(tmp_path / "missing" / "x.yaml")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_commands_refuse_an_unmigrated_database(tmp_path, monkeypatch, write_file, capsys):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.db'}")

    assert main(["registry", "import", str(write_file(BASE_REGISTRY))]) == 2
    assert "Run `llmgov db upgrade`" in capsys.readouterr().err
    assert main(["registry", "export"]) == 2
    assert "Run `llmgov db upgrade`" in capsys.readouterr().err


def test_demo_creates_migrates_and_loads_a_new_sqlite_database(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)

    assert main(["demo"]) == 0  # default: sqlite:///llmgov-demo.db in the current directory

    out = capsys.readouterr().out
    assert (tmp_path / "llmgov-demo.db").exists()
    assert (
        "Loaded the demo registry (registry.yaml): created 10 teams, 17 people, 30 workloads."
        in out
    )
    assert "Registry: 30 workloads in 10 teams" in out
    assert "Search (search)  #C0SEARCH01" in out
    assert "Ownership gaps: 14 workloads need attention" in out

    assert main(["demo"]) == 0  # each run starts the demo database afresh
    assert "Registry: 30 workloads in 10 teams" in capsys.readouterr().out


def test_demo_on_the_test_database(engine, session_factory, database_url, capsys):
    """The demo against the configured backend (PostgreSQL too), twice."""
    assert main(["demo", "--database-url", database_url]) == 0
    first = capsys.readouterr().out
    events = len(audit_events(session_factory))
    assert main(["demo", "--database-url", database_url]) == 0
    second = capsys.readouterr().out

    assert len(audit_events(session_factory)) == events
    # the same registry and gaps, printed the same way
    assert first.split("Registry:", 1)[1] == second.split("Registry:", 1)[1]
    table = first.split("Registry:", 1)[1]
    for row in (
        "support-ticket-triage           bedrock      Marco Rossi (left)            1,500 USD     active",
        "mlp-vllm-shared                 self_hosted  Hana Sato                     18,000 USD    active",
        "risk-transaction-scoring        sagemaker    Farid Haddad                  3,800 USD     active",
        "discovered-sonnet-555566667777  bedrock      —                             —             discovered",
    ):
        assert row in table, row
    assert (
        "discovered, not registered: 3, no owner: 7, owner has left: 3, no budget: 6, no exit strategy: 7"
        in first
    )
    assert "  sales-crm-enrichment            sales: no owner; no budget; no exit strategy" in first


def test_demo_registry_is_believable(engine, session_factory, database_url):
    """~10 teams and ~30 workloads on every platform, with each kind of gap present."""
    import io

    run_demo(database_url, out=io.StringIO())
    with transaction(session_factory) as session:
        views = list_workloads(session, include_retired=True)
    assert len(views) == 31  # 30 registered + marketing-copy, discovered in the sample bill
    assert len({view.team for view in views if view.team}) == 10
    assert {view.platform for view in views} == {"bedrock", "self_hosted", "sagemaker"}
    assert {view.status for view in views} == {"active", "experiment", "discovered", "retired"}
    gaps = {gap for view in views for gap in view.gaps}
    assert {str(gap) for gap in gaps} == {
        "discovered",
        "unowned",
        "owner_inactive",
        "missing_budget",
        "missing_exit_strategy",
    }


def test_demo_database_url_does_not_touch_database_url(tmp_path, monkeypatch, capsys):
    other = tmp_path / "other.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{other}")
    demo_db = tmp_path / "demo.db"

    assert main(["demo", "--database-url", f"sqlite:///{demo_db}"]) == 0

    assert demo_db.exists() and not other.exists()
    engine = make_engine(f"sqlite:///{demo_db}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("select count(*) from workloads").scalar() == 31
    finally:
        engine.dispose()


def test_one_pass_reports_bad_values_and_unknown_teams_together(engine, write_file, capsys):
    """A new user took three tries when the database's problems came only after the file's:
    both kinds now come in one answer, in file order."""
    text = BASE_REGISTRY.replace("team: search\n", "team: serach\n", 1).replace(
        "budget: {monthly: 4000}", "budget: {monthly: -5}"
    )
    assert main(["registry", "import", str(write_file(text))]) == 2
    err = capsys.readouterr().err
    assert "(2 problems)" in err
    team_at = err.index("unknown team 'serach' (did you mean 'search'?)")
    budget_at = err.index("budget.monthly: must be a positive amount, not -5")
    assert team_at < budget_at  # team: comes before budget: in the file


def test_an_unmigrated_database_is_said_first_and_no_empty_file_is_left(
    tmp_path, monkeypatch, write_file, capsys
):
    database = tmp_path / "new.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")
    bad = write_file("workloads:\n  - {slug: a, budget: {monthly: -5}}\n")
    assert main(["registry", "import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "does not exist yet. Run `llmgov db upgrade`" in err
    assert "budget" not in err  # the database first: nothing else can be checked
    assert not database.exists()

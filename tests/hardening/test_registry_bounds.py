"""Small registry files that tie up the importer (docs/reliability.md, finding 8).

A 371-byte YAML "billion laughs" (nine levels of nine aliases, 387 million values once
expanded) and `constraints` nested 900 deep: `llmgov registry import --dry-run` answers
each at once with exit 2 and a message naming the limit, never a RecursionError or minutes
of work. The limits are checked on the parser's events, before anything is built.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time

import pytest

from llmgov.governance.registry_file import (
    MAX_ALIAS_EXPANSION,
    MAX_REGISTRY_BYTES,
    MAX_YAML_DEPTH,
    InvalidRegistry,
    parse_registry,
)

LEVELS = "abcdefghi"
ALIAS_BOMB = (
    "version: 1\nx-a: &a ["
    + ",".join(['"lol"'] * 9)
    + "]\n"
    + "".join(
        f"x-{b}: &{b} [" + ",".join([f"*{a}"] * 9) + "]\n" for a, b in itertools.pairwise(LEVELS)
    )
)
DEEP = (
    "version: 1\nteams:\n  - slug: search\n    name: Search\nworkloads:\n"
    "  - slug: deep\n    name: Deep\n    team: search\n    platform: bedrock\n"
    "    constraints: " + "{a: " * 900 + "1" + "}" * 900 + "\n"
)
DEEP_BLOCK = "version: 1\nx-deep:\n" + "".join("  " * (i + 1) + "a:\n" for i in range(900))

CLI = "import sys; from llmgov.bot.cli import main; sys.exit(main())"


def test_the_files_are_as_small_as_reported():
    assert len(ALIAS_BOMB) < 400 and ALIAS_BOMB.count("*") == 72


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (ALIAS_BOMB, f"expand to over {MAX_ALIAS_EXPANSION:,} more values"),
        (DEEP, f"nested deeper than {MAX_YAML_DEPTH} levels"),
        (DEEP_BLOCK, f"nested deeper than {MAX_YAML_DEPTH} levels"),
    ],
)
def test_the_parser_refuses_at_once_with_a_clear_message(text, says):
    started = time.perf_counter()
    with pytest.raises(InvalidRegistry) as refused:
        parse_registry(text, "bomb.yaml")
    assert time.perf_counter() - started < 1.0
    assert says in str(refused.value) and "nothing was written" in str(refused.value)


def test_an_oversized_file_is_refused_before_parsing():
    text = "version: 1\n# " + "x" * MAX_REGISTRY_BYTES + "\n"
    with pytest.raises(InvalidRegistry, match="over 20 MiB"):
        parse_registry(text, "big.yaml")


def test_a_few_anchors_and_merges_still_load():
    text = (
        "version: 1\nx-defaults: &defaults\n  platform: bedrock\n  team: search\n"
        "teams:\n  - slug: search\n    name: Search\n"
        "workloads:\n"
        + "".join(f"  - <<: *defaults\n    slug: w{i}\n    name: W{i}\n" for i in range(50))
    )
    registry = parse_registry(text)
    assert [w.slug for w in registry.workloads][:2] == ["w0", "w1"]


@pytest.mark.parametrize("name", ["alias-bomb", "deep"])
def test_registry_import_dry_run_answers_within_seconds_with_exit_2(
    name, tmp_path, engine, database_url
):
    path = tmp_path / f"{name}.yaml"
    path.write_text(ALIAS_BOMB if name == "alias-bomb" else DEEP)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CLI, "registry", "import", str(path), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=60,  # before the fix: over 120 s (alias bomb), RecursionError (deep)
        env={"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"},
    )
    assert time.perf_counter() - started < 30
    assert done.returncode == 2, done.stderr
    assert "RecursionError" not in done.stderr and "Traceback" not in done.stderr
    assert f"{name}.yaml" in done.stderr and "nothing was written" in done.stderr

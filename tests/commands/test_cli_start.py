"""`llmgov --help` starts fast: importing the CLI loads no heavy library, and the table of
subcommands that `--help` lists without importing them matches what the modules register."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys

import pytest

from llmgov.bot import cli

HEAVY = ("sqlalchemy", "boto3", "botocore", "numpy", "matplotlib", "slack_bolt", "slack_sdk")


def _loaded_after(code: str) -> list[str]:
    """The heavy top-level packages in sys.modules after running `code` in a fresh Python."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(set(m.split('.')[0] for m in sys.modules))))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=120
    )
    last = out.stdout.strip().splitlines()[-1]
    return [name for name in HEAVY if name in json.loads(last)]


def test_importing_the_cli_imports_no_heavy_library():
    assert _loaded_after("import llmgov.bot.cli") == []


def test_top_level_help_imports_no_heavy_library():
    code = (
        "import contextlib, io\nfrom llmgov.bot.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main(['--help'])\n    except SystemExit:\n        pass"
    )
    assert _loaded_after(code) == []


def test_a_subcommand_loads_only_its_own_module():
    parser = cli.build_parser(["db", "current"])
    actions = parser._subparsers._group_actions[0]
    assert actions.choices["db"].parse_args(["current"]).handler.__module__ == "llmgov.bot.cli.db"
    # the other commands are listed but not built: no arguments of their own
    assert actions.choices["cost"]._actions == []


def _registered() -> dict[str, tuple[str, str | None]]:
    """command -> (module, help) as the modules themselves register them."""
    subparsers = argparse.ArgumentParser().add_subparsers()
    found = {}
    for module in cli.SUBCOMMAND_MODULES:
        before = len(subparsers._choices_actions)
        importlib.import_module(module).register(subparsers)
        for action in subparsers._choices_actions[before:]:
            found[action.dest] = (module, action.help)
    return found


def test_the_lazy_table_matches_what_the_modules_register():
    assert _registered() == cli.SUBCOMMANDS


@pytest.mark.parametrize("command", sorted(cli.SUBCOMMANDS))
def test_every_command_parses_its_own_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0
    assert f"usage: llmgov {command}" in capsys.readouterr().out


def test_an_unknown_command_is_refused_with_the_list(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["nosuch"])
    assert exit_.value.code == 2
    assert "invalid choice: 'nosuch'" in capsys.readouterr().err

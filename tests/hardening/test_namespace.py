"""One import namespace: everything we ship lives under `llmgov.`, so another distribution's
top-level `guardrails`, `models`, `bot` or `templates` can neither shadow ours nor be shadowed.

The wheel's own listing is checked in `.ci/run` (it needs a build); here the installed
package runs the demo with hostile same-named packages first on the path."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OUR_FOLDERS = (
    "aws",
    "bot",
    "commands",
    "models",
    "migrations",
    "economics",
    "collectors",
    "governance",
    "guardrails",
    "templates",
)


def test_every_installed_package_is_under_llmgov():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert all(name.startswith("llmgov.") for name in config["packages"])
    assert set(config["package-dir"]) == {f"llmgov.{folder}" for folder in OUR_FOLDERS}
    # every package folder in the repository is shipped (a new sub-package is not forgotten)
    shipped = {name.removeprefix("llmgov.").replace(".", "/") for name in config["packages"]}
    on_disk = {
        str(init.parent.relative_to(REPO))
        for folder in OUR_FOLDERS
        for init in (REPO / folder).rglob("__init__.py")
    }
    assert shipped == on_disk


@pytest.mark.slow
def test_the_demo_runs_beside_packages_named_like_our_folders(tmp_path):
    """guardrails-ai ships `guardrails`; PyPI has `models`, `templates`, `migrations`... Put a
    broken package of each name first on the path, from an unrelated working folder."""
    shadows = tmp_path / "site"
    for folder in OUR_FOLDERS:
        (shadows / folder).mkdir(parents=True)
        (shadows / folder / "__init__.py").write_text(
            f"raise ImportError('the foreign {folder} package was imported')\n"
        )
    env = {**os.environ, "PYTHONPATH": str(shadows)}
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "llmgov"),
            "demo",
            "--database-url",
            f"sqlite:///{tmp_path / 'demo.db'}",
        ],
        cwd=shadows,  # a project folder with its own models/ must not break us either
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "foreign" not in done.stderr
    assert "Ownership" in done.stdout or "gap" in done.stdout.lower()

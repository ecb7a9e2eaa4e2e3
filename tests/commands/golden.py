"""Golden files for Block Kit: the exact JSON a builder must produce.

A mismatch fails with a readable diff. After an intended change, regenerate with
`LLMGOV_UPDATE_GOLDEN=1 python -m pytest tests/commands` and review the diff in git.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any

GOLDEN_DIR = Path(__file__).parent / "golden"


def assert_golden(name: str, data: Any) -> None:
    path = GOLDEN_DIR / f"{name}.json"
    actual = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if os.environ.get("LLMGOV_UPDATE_GOLDEN"):
        GOLDEN_DIR.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"no golden file {path}; create it with LLMGOV_UPDATE_GOLDEN=1"
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(True), actual.splitlines(True), "golden", "actual"
            )
        )
        raise AssertionError(f"{name} differs from its golden file:\n{diff}")

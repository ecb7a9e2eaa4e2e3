"""How long does `llmgov --help` take, and what does importing the CLI load?

    python benchmarks/bench_cli_start.py [--runs 20]

Times, in fresh processes (wall clock, best and median of `--runs`):

- `llmgov --help` as installed (the console script): the subcommands are listed from a
  table, no subcommand module is imported;
- the same help from every subcommand's parser built in full (`build_parser()` with no
  argv: every module imported, as every start-up did before the lazy table);
- `llmgov db --help`: one subcommand, its module imported.

Then `python -X importtime -c 'import llmgov.bot.cli'`: the cumulative import time of the
package and whether SQLAlchemy, boto3, numpy, matplotlib or Bolt was imported.

Floor: `llmgov --help` at most 0.5 s (median). The machine is shared: the load average is
printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

HEAVY = ("sqlalchemy", "boto3", "numpy", "matplotlib", "slack_bolt")
EAGER = (
    "import contextlib, io\nfrom llmgov.bot.cli import build_parser\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    try:\n        build_parser().parse_args(['--help'])\n    except SystemExit:\n        pass"
)


def wall(command: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return times


def import_profile() -> tuple[float, list[str]]:
    """Cumulative microseconds of `import llmgov.bot.cli` and the heavy packages it loaded."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import llmgov.bot.cli"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    total, loaded = 0.0, set()
    for line in out.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line.split("|"))
        if not cumulative.isdigit():
            continue
        loaded.add(name.split(".")[0])
        if name == "llmgov.bot.cli":
            total = float(cumulative)
    return total, [name for name in HEAVY if name in loaded]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)

    script = shutil.which("llmgov") or os.path.join(os.path.dirname(sys.executable), "llmgov")
    cases = {
        "llmgov --help": [script, "--help"],
        "full parser (every module, as before)": [sys.executable, "-c", EAGER],
        "llmgov db --help": [script, "db", "--help"],
    }
    print(f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}; {args.runs} runs each")
    results = {}
    for label, command in cases.items():
        wall(command, 1)  # warm the file cache
        times = wall(command, args.runs)
        results[label] = statistics.median(times)
        print(f"{label:<40} best {min(times):.3f} s, median {statistics.median(times):.3f} s")
    micros, heavy = import_profile()
    print(
        f"import llmgov.bot.cli: {micros / 1000:.1f} ms cumulative (-X importtime); "
        f"heavy packages imported: {', '.join(heavy) or 'none'}"
    )
    checks = {
        "llmgov --help <= 0.5 s (median)": results["llmgov --help"] <= 0.5,
        "import llmgov.bot.cli loads no heavy package": not heavy,
    }
    for label, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {label}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

"""The `llmgov` command line. Each subcommand lives in its own module with `register()`.

Exit status: 0 success, 2 bad input (message on stderr), 1 failure.

Start-up is lazy: the subcommand modules import SQLAlchemy, boto3, numpy, matplotlib and
Bolt, so `llmgov --help` lists the subcommands from `SUBCOMMANDS` (name, module, one-line
help) without importing any of them, and `llmgov COMMAND ...` imports only COMMAND's
module, whose `register()` adds the full parser. Nothing heavy is imported here either: the
errors mapped to exit codes are imported once the arguments are parsed.
`tests/commands/test_cli_start.py` checks that the table matches what the modules register.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

# command -> (module that registers it, its one-line help), in the order `--help` lists them.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "db": ("llmgov.bot.cli.db", "database migrations (Alembic)"),
    "registry": (
        "llmgov.bot.cli.registry",
        "the ownership registry as code (YAML): import and export",
    ),
    "demo": (
        "llmgov.bot.cli.demo",
        "run the whole loop on a local SQLite database with bundled sample data (no Slack, no AWS)",
    ),
    "serve": ("llmgov.bot.cli.serve", "run the Slack app (HTTP on $PORT, or Socket Mode)"),
    "ask": ("llmgov.bot.cli.ask", "run a slash command locally and print its answer"),
    "collect": (
        "llmgov.bot.cli.collect",
        "run the collectors once (CloudWatch, Cost Explorer, GPUs, Prometheus, sample)",
    ),
    "import-billing": (
        "llmgov.bot.cli.collect",
        "load a FOCUS or CUR 2.0 billing export (CSV, CSV.gz or Parquet), or query it via Athena",
    ),
    "check": (
        "llmgov.bot.cli.governance",
        "evaluate the checks, update alerts and post what changed",
    ),
    "digest": ("llmgov.bot.cli.governance", "send the weekly digest to each owner, now"),
    "gaps": ("llmgov.bot.cli.governance", "post the weekly ownership-gap review, now"),
    "worker": (
        "llmgov.bot.cli.worker",
        "run the scheduler alone (collect, check, digest, gap review, deliver)",
    ),
    "cost": (
        "llmgov.bot.cli.cost",
        "what workloads cost and where spend is going (as /llm-cost)",
    ),
    "decide": (
        "llmgov.bot.cli.decide",
        "Bedrock, self-hosted or hybrid, with the break-even (as /llm-decide)",
    ),
    "breaker": (
        "llmgov.bot.cli.breaker",
        "the cost circuit breaker's maintenance",
    ),
    "audit": ("llmgov.bot.cli.breaker", "the audit trail"),
    "outbox": (
        "llmgov.bot.cli.outbox",
        "messages Slack refused: list them, and replay them once the cause is fixed",
    ),
}

# One module per group of subcommands; each defines register(subparsers).
SUBCOMMAND_MODULES = list(dict.fromkeys(module for module, _ in SUBCOMMANDS.values()))


class ArgumentParser(argparse.ArgumentParser):
    """argparse exits 2 on bad usage already; keep its message short and on stderr."""


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser. Without `argv`, every subcommand in full (imports every module); with it,
    only the subcommand `argv` names in full, the others by name and help alone."""
    parser = ArgumentParser(
        prog="llmgov",
        description="Govern the economics of LLM workloads: ownership, spend, forecasts, decisions.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    if argv is None:
        modules = SUBCOMMAND_MODULES
    else:
        chosen = _command_in(argv)
        modules = [SUBCOMMANDS[chosen][0]] if chosen in SUBCOMMANDS else []
    for name, (module, help_text) in SUBCOMMANDS.items():
        if module in modules:
            if name not in subparsers.choices:  # the first of the module's commands
                importlib.import_module(module).register(subparsers)
        else:
            # Listed for --help and for argparse's "invalid choice" message; never run: a
            # command named on the command line has its module loaded above.
            subparsers.add_parser(name, help=help_text, add_help=False)
    return parser


def _command_in(argv: Sequence[str]) -> str | None:
    """The subcommand named in `argv`: the first word that is not an option (the top-level
    options, -v/--verbose and -h/--help, take no value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    parser = build_parser(arguments)
    args = parser.parse_args(arguments)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # imported here, not at the top: llmgov.models imports SQLAlchemy (see the docstring)
    from llmgov.models.base import SchemaNotReady
    from llmgov.models.errors import BadInput, SourceError

    try:
        return int(args.handler(args) or 0)
    except (BadInput, SchemaNotReady) as error:
        print(f"llmgov {args.command}: {error}", file=sys.stderr)
        return 2
    except SourceError as error:
        print(f"llmgov {args.command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `llmgov demo | head`: the reader went away; exit quietly like other CLI tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

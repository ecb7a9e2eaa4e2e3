"""The `llmgov` command line. Each subcommand lives in its own module with `register()`.

Exit status: 0 success, 2 bad input (message on stderr), 1 failure.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from llmgov.models.base import SchemaNotReady
from llmgov.models.errors import BadInput, SourceError

# One module per group of subcommands; each defines register(subparsers).
SUBCOMMAND_MODULES = [
    "llmgov.bot.cli.db",
    "llmgov.bot.cli.registry",
    "llmgov.bot.cli.demo",
    "llmgov.bot.cli.serve",
    "llmgov.bot.cli.ask",
    "llmgov.bot.cli.collect",
    "llmgov.bot.cli.governance",
    "llmgov.bot.cli.worker",
    "llmgov.bot.cli.cost",
    "llmgov.bot.cli.decide",
    "llmgov.bot.cli.breaker",
]


class ArgumentParser(argparse.ArgumentParser):
    """argparse exits 2 on bad usage already; keep its message short and on stderr."""


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="llmgov",
        description="Govern the economics of LLM workloads: ownership, spend, forecasts, decisions.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
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

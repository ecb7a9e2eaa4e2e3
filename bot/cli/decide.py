"""`llmgov decide SLUG|key=value... [--format text|json] [--as-of DATE]`: what /llm-decide
answers. `--as-of` measures the 30 days before that date from the facts known then."""

from __future__ import annotations

import argparse
import sys

from llmgov.bot.blocks.common import blocks_to_text
from llmgov.bot.blocks.decide import decide_message
from llmgov.bot.cli.common import add_as_of, add_format, migrated_engine, print_json
from llmgov.bot.cli.cost import cli_error
from llmgov.bot.prices import decision_prices
from llmgov.commands.cost import today_utc
from llmgov.commands.decide import (
    WHAT_IF_EXAMPLE,
    HelpRequest,
    OpenForm,
    build_decision,
    decision_to_json,
    parse_decide_text,
)
from llmgov.commands.parsing import ParseError
from llmgov.models.base import make_session_factory
from llmgov.models.errors import BadInput


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "decide",
        help="Bedrock, self-hosted or hybrid, with the break-even (as /llm-decide)",
        description="Recommend Bedrock, self-hosting or a hybrid from measured data or a "
        "what-if; see `llmgov decide help` for the keys.",
    )
    parser.add_argument("words", nargs="*", metavar="SLUG|key=value")
    add_format(parser)
    add_as_of(parser)
    parser.set_defaults(handler=_decide)


def _decide(args: argparse.Namespace) -> int:
    known_at = args.known_at  # --as-of reads every fact now stored; --known-at cuts them
    today = args.as_of or (known_at.date() if known_at else today_utc())
    try:
        request = parse_decide_text(" ".join(args.words), today=today, known_at=known_at)
    except ParseError as error:
        raise BadInput(cli_error(error, "decide")) from None
    if isinstance(request, OpenForm):
        raise BadInput(
            "give a workload slug or key=values, e.g. `llmgov decide search-summaries` or "
            f"`llmgov {WHAT_IF_EXAMPLE.removeprefix('/llm-')}`"
        )
    if isinstance(request, HelpRequest):
        print(request.text.replace("*", ""))
        return 0
    engine = migrated_engine()
    with make_session_factory(engine)() as session:
        try:
            decision = build_decision(session, request, prices=decision_prices(session))
        except ParseError as error:
            raise BadInput(cli_error(error, "decide")) from None
    if args.format == "json":
        print_json(decision_to_json(decision))
    else:
        sys.stdout.write(blocks_to_text(decide_message(decision).blocks))
    return 0


__all__ = ["register"]

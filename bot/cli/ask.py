"""`llmgov ask "/llm-owner list" [--user U123] [--format text|json]`.

Runs a slash command through the same reply code the Slack listener uses, with no Slack:
prints the answer as plain text, or with `--format json` the message (`text` + `blocks`).
Exit status 2 when the answer is an error or a refusal.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from llmgov.bot.blocks.common import blocks_to_text
from llmgov.bot.cli.common import add_as_of, add_format, migrated_engine
from llmgov.bot.listeners.commands import SLASH_COMMANDS
from llmgov.bot.listeners.deps import AppDeps
from llmgov.bot.settings import Settings
from llmgov.commands import owner
from llmgov.governance.people import SLACK_USER_ID
from llmgov.models.base import make_session_factory
from llmgov.models.errors import BadInput

ANONYMOUS = "U0LLMGOVCLI"  # who reads when nobody says; never allowed to change anything


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ask",
        help="run a slash command locally and print its answer",
        description="Run a slash command through the same code Slack runs, without Slack.",
    )
    parser.add_argument("command", metavar='"/COMMAND TEXT"', help='e.g. "/llm-owner list"')
    parser.add_argument(
        "--user",
        default=os.environ.get("LLMGOV_USER"),
        help="Slack user id to act as (default $LLMGOV_USER); needed to change anything",
    )
    add_format(parser)
    add_as_of(parser)
    parser.set_defaults(handler=_ask)


def _split(command_line: str) -> tuple[str, str]:
    name, _, text = command_line.strip().partition(" ")
    if not name.startswith("/"):
        name = "/" + name
    if name not in SLASH_COMMANDS:
        known = ", ".join(sorted(SLASH_COMMANDS))
        raise BadInput(f'unknown command {name!r}; known: {known}. E.g. "/llm-owner list"')
    return name, text.strip()


def _check_user(name: str, text: str, user: str | None) -> str:
    if user is not None and not SLACK_USER_ID.match(user):
        raise BadInput(f"--user {user!r} is not a Slack user id like U0ANA0001")
    if user is None and name == owner.COMMAND:
        try:
            parsed = owner.parse(text)
        except BadInput:
            return ANONYMOUS  # the reply explains the mistake
        if owner.changes_registry(parsed):
            raise BadInput(
                f"`{text}` changes the registry: say who you are with --user U123 "
                "(or set LLMGOV_USER)"
            )
    return user or ANONYMOUS


def _ask(args: argparse.Namespace) -> int:
    name, text = _split(args.command)
    user = _check_user(name, text, args.user)
    dated = args.as_of is not None or args.known_at is not None
    if dated and name != "/llm-cost":
        raise BadInput(f"--as-of and --known-at apply to /llm-cost, not to {name}")
    settings = Settings.from_env()
    engine = migrated_engine(settings.database_url)
    deps = AppDeps.build(settings, make_session_factory(engine))
    payload: dict = {"command": name, "text": text, "user_id": user, "channel_id": "CLI"}
    if dated:
        known_at = args.known_at
        payload["llmgov_as_of"] = args.as_of or (known_at.date() if known_at else None)
        payload["llmgov_known_at"] = known_at
    reply = SLASH_COMMANDS[name].reply(deps, payload, None)
    if reply is None:  # pragma: no cover - without a client no modal can open
        raise BadInput(f"{name} {text} opens a form, which only Slack can show")
    message = reply.message.validate()
    if args.format == "json":
        json.dump(message.to_dict(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(blocks_to_text(message.blocks))
    return 0 if reply.outcome == "ok" else 2

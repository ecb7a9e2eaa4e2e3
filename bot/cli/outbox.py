"""`llmgov outbox failed` and `llmgov outbox replay [KEY...]`: the messages Slack refused.

A message Slack refuses for good (`not_in_channel`, `channel_not_found`, ...) is kept in the
outbox as failed, with the reason and what to do. Once the cause is fixed (the bot invited
to the channel, the channel id corrected), `replay` puts it back in the queue; the sender
still looks for an earlier copy in Slack before posting, so nothing is posted twice.
"""

from __future__ import annotations

import argparse

from llmgov.bot.cli.common import add_format, migrated_engine, print_json
from llmgov.governance.outbox import failed_messages, replay_failed
from llmgov.models.base import make_session_factory, transaction


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "outbox",
        help="messages Slack refused: list them, and replay them once the cause is fixed",
    )
    actions = parser.add_subparsers(dest="outbox_command", metavar="ACTION")
    actions.required = True
    failed = actions.add_parser("failed", help="list the failed messages and why")
    add_format(failed)
    failed.set_defaults(handler=_failed)
    replay = actions.add_parser(
        "replay", help="queue failed messages again (all, or those KEYs) for the sender"
    )
    replay.add_argument("keys", nargs="*", metavar="KEY", help="idempotency keys (default: all)")
    replay.set_defaults(handler=_replay)


def _failed(args: argparse.Namespace) -> int:
    engine = migrated_engine()
    try:
        with transaction(make_session_factory(engine)) as session:
            rows = failed_messages(session)
    finally:
        engine.dispose()
    if args.format == "json":
        print_json([row._asdict() for row in rows])
        return 0
    if not rows:
        print("No failed messages: every message was delivered or is still queued.")
        return 0
    for row in rows:
        print(f"{row.idempotency_key}  {row.method} to {row.channel}: {row.last_error}")
    print(f"{len(rows)} failed. After fixing the cause: llmgov outbox replay [KEY...]")
    return 0


def _replay(args: argparse.Namespace) -> int:
    engine = migrated_engine()
    try:
        with transaction(make_session_factory(engine)) as session:
            count = replay_failed(session, args.keys or None)
    finally:
        engine.dispose()
    if args.keys and count < len(args.keys):
        print(f"{len(args.keys) - count} of the keys given are not failed messages; skipped.")
    print(f"{count} message(s) queued again; the sender delivers them on its next pass.")
    return 0

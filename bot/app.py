"""The Bolt app factory: one shared Web API client, a listener pool that acks, an answer
pool that answers (bot/answers.py), replay protection, our listeners.

`build_app(settings, session_factory)` is the only way the bot builds an `App`: `llmgov
serve` (HTTP or Socket Mode) and the tests use it alike.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse, Respond
from slack_bolt.middleware import Middleware
from slack_sdk import WebClient
from sqlalchemy.orm import Session, sessionmaker

from llmgov.bot.answer_journal import AnswerJournal
from llmgov.bot.answers import SOMETHING_WENT_WRONG, AnswerPool, report_failure
from llmgov.bot.chart_worker import ChartWorker
from llmgov.bot.listeners import register_listeners
from llmgov.bot.listeners.deps import AppDeps
from llmgov.bot.replay_guard import ReplayGuard
from llmgov.bot.settings import Settings
from llmgov.bot.slack_client import make_client
from llmgov.models.errors import BadInput
from llmgov.models.redaction import redact_urls_in

log = logging.getLogger(__name__)

# Listener threads ack, open modals (a trigger_id expires 3 s after the click) and hand
# everything slow to the answer pool; 16 keep acks fast while a few wait on views.open.
# Bolt's default is 5.
LISTENER_WORKERS = 16


class UseSharedClient(Middleware):
    """Give listeners the app's shared client (rate-limit retries, recording, counting).

    Bolt builds a plain WebClient per request; we replace it before authorisation, so even
    the lazy `auth.test` goes through the recording client. The token is static (one
    workspace) and nothing mutates the client, so sharing it across threads is safe.
    """

    def __init__(self, client: WebClient):
        self.client = client

    def process(
        self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse:
        req.context["client"] = self.client
        return next()


# ---- logging without secrets -----------------------------------------------------------

_TOKEN_PATTERN = re.compile(r"\bx(?:ox[abeoprs]|app)-[A-Za-z0-9-]+")
# Every control character but tab (C0, DEL, C1) and the Unicode line and paragraph
# separators: in a log line any of them could end the line and start a forged one.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
# Bolt's verifier logs the whole body of a request that failed verification (at INFO):
# an unverified body, with its response_url and legacy token. Only its first words stay.
_BOLT_UNVERIFIED = re.compile(r"^(Invalid request signature detected)\b.*", re.DOTALL)


def escape_control_characters(text: str) -> str:
    """`text` on one line: each control character as a visible escape (`\\n`, `\\x1b`)."""
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


class RedactSecrets(logging.Filter):
    """Replace every configured secret, anything shaped like a Slack token and the
    credentials in a URL (`https://user:pass@host`) by [redacted];
    keep each record on one line (control characters escaped), so no logged input can forge
    a line; drop the body Bolt logs for a request that failed verification.

    A traceback keeps its lines, each after the first indented, so none of them can pass
    for a record of its own either.
    """

    def __init__(self, secrets: Iterable[str]):
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return redact_urls_in(_TOKEN_PATTERN.sub("[redacted]", text))

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = escape_control_characters(
            self.redact(_BOLT_UNVERIFIED.sub(r"\1 (body not logged)", message))
        )
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = _one_record(self.redact(record.exc_text))
        return True


def _one_record(traceback_text: str) -> str:
    """A traceback's lines, control characters escaped, every line after the first indented."""
    lines = [escape_control_characters(line) for line in traceback_text.split("\n")]
    return "\n".join([lines[0], *(f"  {line}" for line in lines[1:])])


def install_log_redaction(settings: Settings, logger: logging.Logger | None = None) -> None:
    """Attach the redaction filter to every handler of `logger` (the root by default).

    Handler filters see records from every logger that propagates to them; a filter on a
    logger would only see that logger's own records.
    """
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets(settings.secrets()))


# ---- the app ---------------------------------------------------------------------------


def handle_error(
    error: Exception, body: dict[str, Any], logger: logging.Logger, context: dict[str, Any]
) -> None:
    """Log every unhandled listener error, and tell the user when we can.

    Only a request that passed verification and authorisation is answered: an error raised
    while verifying (e.g. garbage signature headers) must never make us POST to a
    response_url chosen by an unauthenticated sender.
    """
    verified = context.get("authorize_result") is not None
    response_url = body.get("response_url") if verified and isinstance(body, dict) else None
    report_failure(error, logger, Respond(response_url=response_url) if response_url else None)


class _DropTokenUnusedWarning(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment even when it is given a client, and
    then warns that the token "will be unused". We give it the one shared client, built from
    that same token, so the warning says nothing; every other Bolt message passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


_BOLT_LOGGER = logging.getLogger("slack_bolt.App")
_BOLT_LOGGER.addFilter(_DropTokenUnusedWarning())


def build_app(
    settings: Settings,
    session_factory: sessionmaker[Session],
    client: WebClient | None = None,
    *,
    token_verification_enabled: bool = True,
    socket_mode: bool = False,
    answers: AnswerPool | None = None,
    charts: ChartWorker | None = None,
) -> App:
    """The Slack app. Tests pass `token_verification_enabled=False` (no `auth.test` at start)
    and their own `answers` pool, to wait for the answers (`answers.wait_idle()`).
    `llmgov serve` passes a started `charts` worker; without one, charts are drawn in the
    answering thread.

    HTTP mode needs SLACK_SIGNING_SECRET (every request's signature is checked, and a
    signature seen before is refused: bot/replay_guard.py); Socket Mode needs SLACK_APP_TOKEN
    instead, and requests arrive unsigned over the socket.
    """
    if not settings.slack_bot_token and (client is None or not client.token):
        raise BadInput("SLACK_BOT_TOKEN is not set: copy the Bot User OAuth Token (xoxb-...).")
    if not socket_mode and not settings.slack_signing_secret:
        raise BadInput(
            "SLACK_SIGNING_SECRET is not set: copy it from the app's Basic Information page."
        )
    client = client or make_client(settings)
    app = App(
        name="llmgov",
        client=client,
        signing_secret=settings.slack_signing_secret or "",
        token_verification_enabled=token_verification_enabled,
        process_before_response=False,
        listener_executor=ThreadPoolExecutor(
            max_workers=LISTENER_WORKERS, thread_name_prefix="llmgov-listener"
        ),
        before_authorize=UseSharedClient(client),
        # Workflow-step tokens would be written onto the shared client; we run no steps.
        attaching_function_token_enabled=False,
    )
    answers = answers or AnswerPool()
    if not socket_mode:
        # after Bolt's signature check, before any listener; shared through the database
        app.use(ReplayGuard(session_factory=session_factory))
        # every command and click recorded before its ack (bot/answer_journal.py)
        answers.journal = AnswerJournal(session_factory)
        app.use(answers.journal)
    deps = AppDeps.build(settings, session_factory, answers, charts)
    register_listeners(app, deps)
    app.error(handle_error)
    return app


__all__ = [
    "LISTENER_WORKERS",
    "SOMETHING_WENT_WRONG",
    "RedactSecrets",
    "build_app",
    "escape_control_characters",
    "handle_error",
    "install_log_redaction",
]

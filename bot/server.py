"""Production HTTP: a Flask WSGI app served by waitress.

`/slack/events` takes every Slack request (slash commands, interactivity, events) through
Bolt's Flask adapter, which hands Bolt the raw body so signatures verify; `/healthz` answers
whether the process and its database are alive; `/metrics` is served by the Flask view
given as `metrics_view` (`bot.metrics.make_metrics_view`).

Bounded and verified before anything parses the body:

- every request body is capped at `MAX_BODY_BYTES`, twice: waitress refuses a declared
  length over it (`max_request_body_size`, `WAITRESS_OPTIONS`), and `BoundedBody`, a WSGI
  layer under Flask, answers 413 from `Content-Length` without reading, and stops reading a
  streamed (chunked) body at the limit;
- `/slack/events` checks the signature on the raw bytes first. An unsigned or wrongly
  signed request gets 401 and is never parsed, handed to Bolt or logged (Bolt's verifier
  would log the whole body with its `response_url` and token);
- a signed request whose body is not what Slack sends (`payload=x`, `payload=[1]`, a JSON
  body that is not an object) gets 400, never a traceback.
"""

from __future__ import annotations

import gc
import io
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from flask import Flask, Response, request
from slack_bolt import App
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HTTP_THREADS = 8

# Slack's largest requests are view submissions: a modal of up to 100 blocks with its state,
# a few tens of KiB at most (our biggest, the register form filled to every field's limit,
# is under 40 KiB). 1 MiB leaves room for that and refuses anything built to use memory.
MAX_BODY_BYTES = 1024 * 1024
# waitress's own limit on what it will buffer for one request (its default is 1 GB).
WAITRESS_OPTIONS: dict[str, Any] = {"max_request_body_size": MAX_BODY_BYTES}

INVALID_REQUEST = {"error": "invalid request"}  # what Bolt answers a bad signature, too


def database_check(session_factory: sessionmaker[Session]) -> Callable[[], str | None]:
    """A health check that runs `SELECT 1`: None when fine, else what failed."""

    def check() -> str | None:
        try:
            with session_factory() as session:
                session.execute(text("SELECT 1"))
        except Exception as error:  # any failure means unhealthy; say which
            return f"database: {type(error).__name__}"
        return None

    return check


def create_web_app(
    bolt_app: App,
    *,
    health_checks: tuple[Callable[[], str | None], ...] = (),
    metrics_view: Callable[[], Any] | None = None,
) -> Flask:
    """The WSGI app: Slack requests, health, and (optionally) metrics."""
    web = Flask(__name__)
    web.wsgi_app = BoundedBody(web.wsgi_app)  # type: ignore[method-assign]
    handler = SlackRequestHandler(bolt_app)
    # Bolt keeps the secret it verifies with; socket-mode apps have none and never come here.
    signing_secret = getattr(bolt_app, "_signing_secret", None) or ""
    verifier = SignatureVerifier(signing_secret) if signing_secret else None

    @web.post(EVENTS_PATH)
    def slack_events() -> Any:
        if not _signature_headers_well_formed(request.headers):
            return Response("invalid signature headers", status=401)
        body = request.get_data()  # at most MAX_BODY_BYTES: BoundedBody saw to that
        if verifier is not None and not _verified(verifier, body, request.headers):
            return INVALID_REQUEST, 401
        problem = malformed_body(body, request.headers.get("Content-Type", ""))
        if problem:
            log.warning("signed request refused: %s", problem)
            return {"error": problem}, 400
        return handler.handle(request)

    @web.get("/healthz")
    def healthz():
        problems = [p for p in (check() for check in health_checks) if p]
        if problems:
            return {"ok": False, "problems": problems}, 503
        return {"ok": True}

    if metrics_view is not None:
        web.add_url_rule("/metrics", endpoint="metrics", view_func=metrics_view)
    return web


def _verified(verifier: SignatureVerifier, body: bytes, headers) -> bool:
    """The Slack signature check on the raw bytes, before anything parses them."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return verifier.is_valid(
        body=text,
        timestamp=headers.get("X-Slack-Request-Timestamp"),
        signature=headers.get("X-Slack-Signature"),
    )


def malformed_body(body: bytes, content_type: str) -> str | None:
    """Why this body is not one Slack sends (None: it is fine), checked before Bolt parses it.

    Slack sends slash commands form-encoded, interactions as a form field `payload` holding
    a JSON object, and events as a JSON object.
    """
    text = body.decode("utf-8")  # verified bodies only, so it decoded once already
    if content_type.startswith("application/json"):
        return None if _json_object(text) else "the body is not a JSON object"
    form = parse_qs(text, keep_blank_values=True)
    if "payload" in form:
        values = form["payload"]
        if len(values) != 1 or not _json_object(values[0]):
            return "the payload field is not a JSON object"
    return None


def _json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except (ValueError, RecursionError):
        return False


class BoundedBody:
    """A WSGI layer that refuses bodies over `limit` bytes before the app reads them.

    A declared `Content-Length` over the limit gets 413 at once, unread. A body without one
    (chunked) is read up to the limit and handed on from memory, or refused with 413 as soon
    as it passes it, so no request ever holds more than `limit` bytes of us.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], limit: int = MAX_BODY_BYTES):
        self.app = app
        self.limit = limit

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        declared = environ.get("CONTENT_LENGTH") or ""
        if declared:
            try:
                length = int(declared)
            except ValueError:
                return _plain(start_response, "400 Bad Request", "invalid Content-Length")
            if length > self.limit:
                return self._too_large(environ, start_response)
        elif environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
            body = environ["wsgi.input"].read(self.limit + 1)
            if len(body) > self.limit:
                return self._too_large(environ, start_response)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)

    def _too_large(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        log.warning(
            "refused a request body over %d bytes on %s",
            self.limit,
            _printable(environ.get("PATH_INFO", "")),
        )
        return _plain(
            start_response,
            "413 Request Entity Too Large",
            f"request body over {self.limit} bytes",
            close=True,
        )


def _plain(
    start_response: Callable[..., Any], status: str, text: str, *, close: bool = False
) -> list[bytes]:
    body = text.encode()
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    if close:  # the unread body must not be taken for the next request
        headers.append(("Connection", "close"))
    start_response(status, headers)
    return [body]


def _printable(text: str, limit: int = 200) -> str:
    return text[:limit].encode("unicode_escape").decode("ascii")


def _signature_headers_well_formed(headers) -> bool:
    """Reject what Slack never sends before Bolt's verifier sees it (it raises on some of it).

    Missing headers are left to Bolt, which answers 401 itself.
    """
    timestamp = headers.get("X-Slack-Request-Timestamp")
    signature = headers.get("X-Slack-Signature")
    if timestamp is not None and not (
        timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12
    ):
        return False
    return signature is None or signature.isascii()


def freeze_startup_objects() -> None:
    """Move everything start-up made (modules, the app, pools) out of the collector's sight.

    A full collection walks every tracked object; after start-up that is ~150,000 objects
    that will live as long as the process, and the pause (up to ~130 ms measured) lands on
    whichever request is acking at the time. `gc.freeze()` keeps them out of every later
    collection, so the pauses shrink to what requests themselves allocate.
    """
    gc.collect()
    gc.freeze()


def serve_http(web: Flask, host: str, port: int, threads: int = HTTP_THREADS) -> None:
    """Serve until interrupted, with waitress (a production WSGI server, pure Python)."""
    from waitress import serve

    log.info("llmgov listening on http://%s:%d%s", host, port, EVENTS_PATH)
    serve(web, host=host, port=port, threads=threads, ident="llmgov", **WAITRESS_OPTIONS)


__all__ = [
    "EVENTS_PATH",
    "MAX_BODY_BYTES",
    "WAITRESS_OPTIONS",
    "BoundedBody",
    "create_web_app",
    "database_check",
    "freeze_startup_objects",
    "malformed_body",
    "serve_http",
]

"""A mock Slack Web API on an ephemeral loopback port, with state and fault injection.

It stores what the bot posts (per channel, with metadata, so idempotency lookups work),
answers the methods the bot uses, can be told to fail (429 with Retry-After, 5xx, a delay),
and checks every call against the Web API method catalogue (a subset of
slack-ruby/slack-api-ref copied into tests/fixtures): unknown methods, unknown arguments and
missing required arguments are recorded as contract violations.

With `enforce_rate_limits=True` it also behaves like Slack under load: more than one
chat.postMessage per second to one channel, or more calls to a method than its tier allows
per minute (t1 1, t2 20, t3 50, t4 100, from the catalogue's `rate_tier`), is answered 429
with Retry-After. Its time comes from `clock` (default time.monotonic), so a benchmark can
share a virtual clock with the sender.

`reply_delay` holds every successful answer back after the work is done (network latency
on the way back), which widens the window in which a killed client has posted but not
heard so. A `Fault(200, delay=s)` answers normally after `s` seconds: a client that gave up earlier
(timed out) has still had its message posted, as happens with the real Slack.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

CATALOGUE_PATH = os.path.join(
    os.path.dirname(__file__), "..", "fixtures", "slack_web_api_methods.json"
)
TIER_PER_MINUTE = {"t1": 1, "t2": 20, "t3": 50, "t4": 100}


def load_catalogue() -> dict[str, dict[str, Any]]:
    with open(CATALOGUE_PATH) as handle:
        return json.load(handle)["methods"]


@dataclass
class Call:
    method: str  # e.g. "chat.postMessage", or "response_url" / "upload" for non-API paths
    args: dict[str, Any]
    at: float
    status: int = 200


@dataclass
class Fault:
    status: int  # 429, 500, ...
    retry_after: int | None = None
    delay: float = 0.0  # seconds to sleep before answering (timeouts)
    error: str = "internal_error"


@dataclass
class SlackState:
    calls: list[Call] = field(default_factory=list)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: dict[str, list[Fault]] = field(default_factory=lambda: defaultdict(list))
    contract_violations: list[str] = field(default_factory=list)
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    uploads: dict[str, dict[str, Any]] = field(default_factory=dict)
    # rate-limit windows: key -> times of the calls Slack accepted
    windows: dict[tuple[str, str], deque[float]] = field(default_factory=lambda: defaultdict(deque))
    lock: threading.Lock = field(default_factory=threading.Lock)


class MockSlack:
    """Start with `MockSlack().start()`; `url` is the base URL to give WebClient/SLACK_API_URL."""

    def __init__(
        self,
        catalogue: dict[str, dict[str, Any]] | None = None,
        *,
        enforce_rate_limits: bool = False,
        clock: Callable[[], float] | None = None,
        reply_delay: float = 0.0,
    ) -> None:
        self.catalogue = catalogue if catalogue is not None else load_catalogue()
        self.state = SlackState()
        self.enforce_rate_limits = enforce_rate_limits
        self.clock = clock or time.monotonic
        self.reply_delay = reply_delay  # after doing the work, before answering (latency)
        self._ts = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None

    # ---- lifecycle -------------------------------------------------------------------
    def start(self) -> MockSlack:
        mock = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                mock._handle(self)

            def do_GET(self):
                mock._handle(self)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client that was killed or timed out mid-request: nothing to report

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the mock first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/"

    @property
    def response_url(self) -> str:
        return self.url.replace("/api/", "/response_url/")

    # ---- test helpers ----------------------------------------------------------------
    def add_user(self, user_id: str, **fields: Any) -> None:
        profile = {"email": fields.pop("email", None), "real_name": fields.get("real_name")}
        self.state.users[user_id] = {
            "id": user_id,
            "name": fields.pop("name", user_id.lower()),
            "real_name": fields.pop("real_name", user_id),
            "deleted": fields.pop("deleted", False),
            "tz": fields.pop("tz", "Europe/London"),
            "is_bot": False,
            "profile": profile,
            **fields,
        }

    def fail_next(self, method: str, fault: Fault, times: int = 1) -> None:
        with self.state.lock:
            self.state.faults[method].extend([fault] * times)

    def calls_to(self, method: str) -> list[Call]:
        with self.state.lock:
            return [c for c in self.state.calls if c.method == method and c.status == 200]

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.calls_to(method)
            if len(found) >= count:
                return found
            time.sleep(0.01)
        raise AssertionError(
            f"expected {count} call(s) to {method}, got {len(self.calls_to(method))}"
        )

    def channel_messages(self, channel: str) -> list[dict[str, Any]]:
        with self.state.lock:
            return list(self.state.messages.get(channel, []))

    def all_messages(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [m for msgs in self.state.messages.values() for m in msgs]

    def rate_limited_calls(self, method: str | None = None) -> list[Call]:
        """Calls answered 429 (by an injected fault or by the rate-limit enforcer)."""
        with self.state.lock:
            return [c for c in self.state.calls if c.status == 429 and method in (None, c.method)]

    # ---- request handling ------------------------------------------------------------
    def _read_args(self, request: BaseHTTPRequestHandler) -> dict[str, Any]:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        if len(raw) < length:
            # the client died mid-request (the kill tests do this): Slack would never see it
            raise _AbortedRequest
        content_type = request.headers.get("Content-Type", "")
        if "application/json" in content_type and raw:
            args = json.loads(raw)
        elif (
            "multipart/form-data" in content_type
            or not raw
            or request.path.startswith("/upload/")  # file bytes, not a form
        ):
            args = {"_raw_bytes": len(raw)}
        else:
            args = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        if "?" in request.path:
            args.update({k: v[0] for k, v in parse_qs(request.path.split("?", 1)[1]).items()})
        auth = request.headers.get("Authorization")
        if auth and "token" not in args:
            args["token"] = auth.removeprefix("Bearer ")
        return args

    def _reply(self, request, status: int, payload: dict[str, Any], headers=()) -> None:
        data = json.dumps(payload).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(data)

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        try:
            args = self._read_args(request)
        except _AbortedRequest:
            return
        if path.startswith("/response_url/"):
            method = "response_url"
        elif path.startswith("/upload/"):
            method = "upload"
            args["file_id"] = path.rsplit("/", 1)[-1]
        else:
            method = path.removeprefix("/api/")
        with self.state.lock:
            faults = self.state.faults.get(method)
            fault = faults.pop(0) if faults else None
        if fault is not None and fault.status == 200:
            time.sleep(fault.delay)  # a slow answer: the work is done, just late
            fault = None
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            with self.state.lock:
                self.state.calls.append(Call(method, args, time.time(), fault.status))
            headers = [("Retry-After", str(fault.retry_after))] if fault.retry_after else []
            error = "ratelimited" if fault.status == 429 else fault.error
            return self._reply(request, fault.status, {"ok": False, "error": error}, headers)
        with self.state.lock:
            retry_after = self._rate_limit(method, args) if self.enforce_rate_limits else None
            if retry_after is not None:
                self.state.calls.append(Call(method, args, time.time(), 429))
            else:
                self.state.calls.append(Call(method, args, time.time()))
                if method not in ("response_url", "upload"):
                    self._check_contract(method, args)
                payload = self._answer(method, args)
        if retry_after is not None:
            return self._reply(
                request,
                429,
                {"ok": False, "error": "ratelimited"},
                [("Retry-After", str(retry_after))],
            )
        if self.reply_delay:
            time.sleep(self.reply_delay)
        return self._reply(request, 200, payload)

    def _rate_limit(self, method: str, args: dict[str, Any]) -> int | None:
        """Retry-After seconds when this call exceeds Slack's limits, else None (and count it).

        Called with the state lock held.
        """
        if method == "chat.postMessage":
            key, limit, window = (method, self._dm_channel(str(args.get("channel")))), 1, 1.0
        else:
            tier = (self.catalogue.get(method) or {}).get("rate_tier")
            if tier not in TIER_PER_MINUTE:
                return None
            key, limit, window = (method, "*"), TIER_PER_MINUTE[tier], 60.0
        now = self.clock()
        calls = self.state.windows[key]
        while calls and calls[0] <= now - window:
            calls.popleft()
        if len(calls) >= limit:
            return max(1, math.ceil(calls[0] + window - now))
        calls.append(now)
        return None

    def _check_contract(self, method: str, args: dict[str, Any]) -> None:
        spec = self.catalogue.get(method)
        if spec is None:
            self.state.contract_violations.append(f"{method}: not in the method catalogue")
            return
        known = spec.get("args", {})
        for name in args:
            if name not in known and name != "_raw_bytes":
                self.state.contract_violations.append(f"{method}: unknown argument {name!r}")
        for name, meta in known.items():
            if meta.get("required") and name not in args:
                self.state.contract_violations.append(f"{method}: missing required {name!r}")

    def _next_ts(self) -> str:
        return f"{1_700_000_000 + next(self._ts)}.000100"

    def _dm_channel(self, channel: str) -> str:
        return "D" + channel[1:] if channel.startswith(("U", "W")) else channel

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        state = self.state
        if method == "auth.test":
            return {"ok": True, "team_id": "T0TEST", "user_id": "UBOT", "bot_id": "B0BOT"}
        if method == "chat.postMessage":
            channel = self._dm_channel(args["channel"])
            message = {
                "channel": channel,
                "ts": self._next_ts(),
                "text": args.get("text"),
                "blocks": _maybe_json(args.get("blocks")),
                "metadata": _maybe_json(args.get("metadata")),
                "thread_ts": args.get("thread_ts"),
            }
            state.messages[channel].append(message)
            return {"ok": True, "channel": channel, "ts": message["ts"], "message": message}
        if method == "chat.update":
            for message in state.messages.get(args["channel"], []):
                if message["ts"] == args["ts"]:
                    message.update(text=args.get("text"), blocks=_maybe_json(args.get("blocks")))
                    return {"ok": True, "channel": args["channel"], "ts": args["ts"]}
            return {"ok": False, "error": "message_not_found"}
        if method in ("chat.postEphemeral",):
            return {"ok": True, "message_ts": self._next_ts()}
        if method == "conversations.open":
            users = str(args.get("users", "")).split(",")[0]
            return {"ok": True, "channel": {"id": self._dm_channel(users)}}
        if method == "conversations.history":
            messages = list(reversed(state.messages.get(args["channel"], [])))
            limit = int(args.get("limit", 100))
            return {"ok": True, "messages": messages[:limit], "has_more": False}
        if method == "conversations.replies":
            thread = [
                m
                for m in state.messages.get(args["channel"], [])
                if m["ts"] == args["ts"] or m.get("thread_ts") == args["ts"]
            ]
            limit = int(args.get("limit", 100))
            return {"ok": True, "messages": thread[:limit], "has_more": False}
        if method == "conversations.join":
            return {"ok": True, "channel": {"id": args["channel"]}}
        if method == "users.info":
            user = state.users.get(args["user"])
            return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}
        if method == "users.lookupByEmail":
            for user in state.users.values():
                if user["profile"].get("email") == args["email"]:
                    return {"ok": True, "user": user}
            return {"ok": False, "error": "users_not_found"}
        if method in ("views.open", "views.update", "views.publish", "views.push"):
            view_id = args.get("view_id") or f"V{len(state.views) + 1:08d}"
            view = _maybe_json(args.get("view"))
            state.views[view_id] = {"id": view_id, **(view or {}), "user_id": args.get("user_id")}
            return {"ok": True, "view": state.views[view_id]}
        if method == "files.getUploadURLExternal":
            file_id = f"F{len(state.uploads) + 1:08d}"
            state.uploads[file_id] = {
                "filename": args.get("filename"),
                "length": args.get("length"),
            }
            return {
                "ok": True,
                "upload_url": self.url.replace("/api/", f"/upload/{file_id}"),
                "file_id": file_id,
            }
        if method == "files.completeUploadExternal":
            files = _maybe_json(args.get("files")) or []
            state.uploads.setdefault("completed", {}).update(
                {f["id"]: args.get("channel_id") for f in files}
            )
            channel = args.get("channel_id")
            shared = [
                {
                    "id": f["id"],
                    "name": (state.uploads.get(f["id"]) or {}).get("filename"),
                    "title": f.get("title"),
                }
                for f in files
            ]
            if channel:  # sharing a file posts a message with it, as in Slack
                message = {
                    "channel": channel,
                    "ts": self._next_ts(),
                    "text": args.get("initial_comment") or "",
                    "files": shared,
                    "thread_ts": args.get("thread_ts"),
                    "metadata": None,
                    "blocks": None,
                }
                state.messages[channel].append(message)
                for f in files:
                    state.uploads[f["id"]]["shares"] = {channel: [{"ts": message["ts"]}]}
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}
        if method == "files.info":
            upload = state.uploads.get(str(args.get("file"))) or {}
            shares = upload.get("shares") or {}
            return {"ok": True, "file": {"id": args.get("file"), "shares": {"private": shares}}}
        if method == "usergroups.users.list":
            return {"ok": True, "users": []}
        return {"ok": True}


class _AbortedRequest(Exception):
    """The request body ended before its Content-Length."""


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value

"""Reject replayed Slack requests.

Bolt's RequestVerification checks the HMAC and that the timestamp is within 5 minutes of
now, but keeps no memory: the same signed request sent again inside those 5 minutes would
be processed again. Most of our actions are idempotent (a second `claim` or `budget`
changes nothing), but a replayed "Record decision" would store a second decision record and
a replayed `/llm-cost ... public` would post again. `ReplayGuard` runs after verification
(`build_app` installs it with `app.use`, after Bolt's own middleware), remembers every
verified signature until its timestamp leaves the window, and answers a repeat like a bad
signature (401) before any listener runs.

Slack's own retries are not replays. Slash commands and interactions are never retried.
The Events API retries a delivery we did not answer with 2xx within 3 s (at once, after
1 minute, after 5 minutes, with `X-Slack-Retry-Num`); each retry is a new request, signed
with its own timestamp, so its signature is new and it goes through. Should a retry ever
carry the exact signature of a delivery we accepted, rejecting it is harmless: we only
remember signatures that passed the guard, so that delivery is already being handled. The
guard must not trust `X-Slack-Retry-Num` either way: the header is not signed, so a replay
could simply add it.

Memory: only requests that passed signature verification are remembered (a forger cannot
fill the memory), each until its timestamp is `window` seconds old, i.e. at most 10 minutes
for a timestamp 5 minutes in the future. Expired signatures are dropped, oldest first, on
every request, so the memory holds at most the last 10 minutes of genuine traffic (about
250 bytes a request, the signature included).

Shared by replicas and restarts: `build_app` gives the guard the database
(`ReplayGuard(session_factory=...)`), and each accepted signature is a row of
`seen_requests(signature PRIMARY KEY, expires_at)`, written with `INSERT ... ON CONFLICT DO
NOTHING RETURNING` in its own transaction before any listener runs: no row back is a replay,
whichever process (or which life of it) accepted the first. Expired rows are deleted at most
once a minute. Without a database (tests of the window logic) the guard keeps the dict.
Socket Mode requests are unsigned (the socket is authenticated instead): the guard lets
them through and `build_app` does not install it there.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from slack_bolt import BoltRequest, BoltResponse
from slack_bolt.middleware import Middleware
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from llmgov.models.replay import SeenRequest

# SignatureVerifier rejects timestamps further than this from now, so a signature only
# needs remembering until its timestamp is this old.
WINDOW_SECONDS = 300
PURGE_EVERY_SECONDS = 60


class ReplayGuard(Middleware):
    """401 for a signed request whose signature was already accepted within the window."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        window: int = WINDOW_SECONDS,
        *,
        session_factory: sessionmaker[Session] | None = None,
    ):
        self.clock = clock
        self.window = window
        self.session_factory = session_factory
        self._purged_at = 0.0
        self._forget_after: dict[str, float] = {}  # signature -> when it may be forgotten
        # the same signatures, ordered by when they may be forgotten (a heap), because
        # timestamps do not arrive in order: one 5 minutes ahead must not hold back the rest
        self._expiries: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def process(
        self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse:
        if req.mode == "socket_mode":
            return next()
        signature = (req.headers.get("x-slack-signature") or [""])[0]
        timestamp = (req.headers.get("x-slack-request-timestamp") or ["0"])[0]
        if signature and not self._remember(signature, timestamp):
            return BoltResponse(status=401, body={"error": "invalid request"})
        return next()

    @property
    def remembered(self) -> int:
        """How many signatures are held now (expired ones go at the next request)."""
        with self._lock:
            return len(self._forget_after)

    def _remember(self, signature: str, timestamp: str) -> bool:
        """False when `signature` was seen and is still inside the window."""
        now = self.clock()
        try:
            forget_after = max(float(int(timestamp) + self.window), now)
        except ValueError:  # verification refuses these; remember a full window anyway
            forget_after = now + self.window
        if self.session_factory is not None:
            return self._remember_in_database(signature, now, forget_after)
        with self._lock:
            while self._expiries and self._expiries[0][0] < now:
                _, expired = heapq.heappop(self._expiries)
                del self._forget_after[expired]
            if signature in self._forget_after:
                return False
            self._forget_after[signature] = forget_after
            heapq.heappush(self._expiries, (forget_after, signature))
            return True

    def _remember_in_database(self, signature: str, now: float, forget_after: float) -> bool:
        """The row for `signature` is inserted now (True) or was there already (False)."""
        expires_at = datetime.fromtimestamp(forget_after, UTC)
        with self.session_factory() as session, session.begin():
            dialect = session.get_bind().dialect.name
            insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
            if now - self._purged_at >= PURGE_EVERY_SECONDS:
                self._purged_at = now
                session.execute(
                    delete(SeenRequest).where(
                        SeenRequest.expires_at < datetime.fromtimestamp(now, UTC)
                    )
                )
            inserted = session.execute(  # RETURNING: a row back means this insert made it
                insert(SeenRequest)
                .values(signature=signature, expires_at=expires_at)
                .on_conflict_do_nothing(index_elements=["signature"])
                .returning(SeenRequest.signature)
            ).first()
            if inserted is not None:
                return True
            # there already: a replay, unless that row has expired (not purged yet)
            seen = session.get(SeenRequest, signature)
            if seen is not None and seen.expires_at < datetime.fromtimestamp(now, UTC):
                seen.expires_at = expires_at
                return True
            return False


__all__ = ["PURGE_EVERY_SECONDS", "WINDOW_SECONDS", "ReplayGuard"]

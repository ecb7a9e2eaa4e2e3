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

One process remembers its own requests only: with several web replicas behind a load
balancer, back `_remember` by a table (`request_nonces(signature PRIMARY KEY, expires_at)`,
`INSERT ... ON CONFLICT DO NOTHING`, a row count of 0 = replay) instead of the dict.
Socket Mode requests are unsigned (the socket is authenticated instead): the guard lets
them through and `build_app` does not install it there.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable

from slack_bolt import BoltRequest, BoltResponse
from slack_bolt.middleware import Middleware

# SignatureVerifier rejects timestamps further than this from now, so a signature only
# needs remembering until its timestamp is this old.
WINDOW_SECONDS = 300


class ReplayGuard(Middleware):
    """401 for a signed request whose signature was already accepted within the window."""

    def __init__(self, clock: Callable[[], float] = time.time, window: int = WINDOW_SECONDS):
        self.clock = clock
        self.window = window
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
        with self._lock:
            while self._expiries and self._expiries[0][0] < now:
                _, expired = heapq.heappop(self._expiries)
                del self._forget_after[expired]
            if signature in self._forget_after:
                return False
            self._forget_after[signature] = forget_after
            heapq.heappush(self._expiries, (forget_after, signature))
            return True


__all__ = ["WINDOW_SECONDS", "ReplayGuard"]

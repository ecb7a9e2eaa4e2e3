"""PROPOSAL, not yet in the product: reject replayed Slack requests.

Bolt's RequestVerification checks the HMAC and that the timestamp is within 5 minutes, so
the same signed request sent again inside those 5 minutes is accepted and processed again.
Most of our actions are idempotent (a second `claim` or `budget` changes nothing), but a
replayed "Record decision" stores a second decision record and a replayed `/llm-cost ...
public` posts again. This middleware, installed after RequestVerification, remembers each
verified signature until its timestamp leaves the window and answers a repeat like a bad
signature (401), before any listener runs.

To adopt it, move this module to `bot/replay_guard.py` and add in `bot/app.build_app`,
for HTTP mode only (Socket Mode requests are unsigned):

    if not socket_mode:
        app.use(ReplayGuard())

One process remembers its own requests only: with several web replicas behind a load
balancer, back `_remember` by a table (`request_nonces(signature PRIMARY KEY, expires_at)`,
`INSERT ... ON CONFLICT DO NOTHING`, a row count of 0 = replay) instead of the dict.
`tests/hardening/test_signing.py` tests this class on a real app.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
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
        self._seen: OrderedDict[str, float] = OrderedDict()  # signature -> forget after
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

    def _remember(self, signature: str, timestamp: str) -> bool:
        """False when `signature` was seen and is still inside the window."""
        now = self.clock()
        try:
            forget_after = int(timestamp) + self.window
        except ValueError:
            forget_after = int(now) + self.window
        with self._lock:
            # Entries arrive in roughly timestamp order: drop the expired ones from the front.
            while self._seen and next(iter(self._seen.values())) < now:
                self._seen.popitem(last=False)
            if signature in self._seen:
                return False
            self._seen[signature] = max(forget_after, now)
            return True


__all__ = ["ReplayGuard"]

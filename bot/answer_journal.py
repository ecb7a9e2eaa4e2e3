"""Nothing acknowledged is lost: acknowledged requests are kept in the database until their
answer is sent, and a restarted server (or another replica) answers what a killed one left.

- **Before the ack.** `AnswerJournal` is a Bolt middleware, after the signature check and
  the replay guard: every slash command and button click (the requests that carry a
  `response_url`) is a row of `pending_answers` with its verified body, before any listener
  runs, so before its ack returns.
- **Handed to the answer pool.** `ack_then_answer` marks the row `queued` (before the ack),
  with this process as its holder and a lease; `AnswerPool` marks it `answered` once the
  answer was sent (or the user was told it failed). A request answered in the listener
  thread itself (opening a modal, within the trigger's 3 s) is finished when the ack
  returns and is never re-run.
- **Sending.** The request's `respond` is a `JournaledRespond`: right before its first POST
  to the response_url it marks the row `sending`. A row that began sending is never re-run,
  because Slack may have the answer already.
- **After a crash.** `recover` (at start and every `RECOVER_EVERY_SECONDS`) takes the queued,
  unanswered rows whose holder is gone (a process of this host that no longer runs) or whose
  lease has run out (another host's), and dispatches each body again through the app,
  signed anew with the signing secret (the replay guard sees a new signature; the journal
  knows the row). Each recovered row is claimed with a conditional update, so two replicas
  never re-run the same one.

Sent once: only rows whose answer never began sending are re-run, so no answer is sent
twice. The price is a crash in the instant between marking a row `sending` and its bytes
leaving: that one answer is lost (the user asks again), rather than sent twice.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse, Respond
from slack_bolt.middleware import Middleware
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from llmgov.models.replay import PendingAnswer

log = logging.getLogger(__name__)

# Longer than any answer takes (about 40 s at the worst of a burst): another replica takes a
# row over only once its holder has had this long.
LEASE = timedelta(minutes=5)
RECOVER_EVERY_SECONDS = 30
RECOVERED = "llmgov_recovered_answer"  # context key of a re-dispatched request
# Finished rows (answered, sent, or answered in the listener thread) are kept this long.
RETENTION = timedelta(days=1)


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _holder_is_gone(holder: str) -> bool:
    """A holder of this host whose process no longer runs (other hosts: only the lease)."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _now() -> datetime:
    return datetime.now(UTC)


class AnswerJournal(Middleware):
    def __init__(self, session_factory: sessionmaker[Session], holder: str | None = None):
        self.session_factory = session_factory
        self.holder = holder or this_process()

    # ---- before the ack -----------------------------------------------------------------

    def process(
        self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse:
        response_url = _response_url(req.body) if req.mode == "http" else None
        if response_url:
            if RECOVERED not in req.context:
                self.record(response_url, req.raw_body, _content_type(req))
            client = req.context.get("client")
            req.context["respond"] = JournaledRespond(
                response_url=req.context.get("response_url") or response_url,
                proxy=getattr(client, "proxy", None),
                ssl=getattr(client, "ssl", None),
                journal=self,
            )
        return next()

    def record(self, response_url: str, body: str, content_type: str) -> None:
        now = _now()
        with self.session_factory() as session, session.begin():
            dialect = session.get_bind().dialect.name
            insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
            session.execute(
                insert(PendingAnswer)
                .values(
                    response_url=response_url,
                    body=body,
                    content_type=content_type,
                    holder=self.holder,
                    lease_until=now + LEASE,
                    created_at=now,
                    attempts=0,
                )
                .on_conflict_do_nothing(index_elements=["response_url"])
            )

    def queued(self, response_url: str | None) -> None:
        """The answer goes to the pool: re-run it after a crash."""
        if not response_url:
            return
        now = _now()
        with self.session_factory() as session, session.begin():
            session.execute(
                update(PendingAnswer)
                .where(PendingAnswer.response_url == response_url)
                .values(queued_at=now, holder=self.holder, lease_until=now + LEASE)
            )

    def sending(self, response_url: str | None) -> None:
        """The answer's POST begins: from now on the row is never re-run."""
        if not response_url:
            return
        with self.session_factory() as session, session.begin():
            session.execute(
                update(PendingAnswer)
                .where(
                    PendingAnswer.response_url == response_url,
                    PendingAnswer.sending_at.is_(None),
                )
                .values(sending_at=_now())
            )

    def answered(self, response_url: str | None) -> None:
        if not response_url:
            return
        with self.session_factory() as session, session.begin():
            session.execute(
                update(PendingAnswer)
                .where(PendingAnswer.response_url == response_url)
                .values(answered_at=_now())
            )

    # ---- after a crash ----------------------------------------------------------------

    def recover(self, app: App, signing_secret: str) -> int:
        """Re-dispatch the queued, unanswered requests a gone holder left; how many.
        Rows finished more than RETENTION ago are deleted on the way."""
        now = _now()
        with self.session_factory() as session, session.begin():
            session.execute(
                delete(PendingAnswer).where(
                    PendingAnswer.created_at < now - RETENTION,
                    or_(
                        PendingAnswer.answered_at.is_not(None),
                        PendingAnswer.sending_at.is_not(None),
                        PendingAnswer.queued_at.is_(None),
                    ),
                )
            )
        with self.session_factory() as session:
            rows = session.execute(
                select(PendingAnswer.id, PendingAnswer.holder, PendingAnswer.lease_until)
                .where(
                    PendingAnswer.answered_at.is_(None),
                    PendingAnswer.sending_at.is_(None),
                    PendingAnswer.queued_at.is_not(None),
                    PendingAnswer.holder != self.holder,
                )
                .order_by(PendingAnswer.id)
            ).all()
        taken = [
            row.id
            for row in rows
            if (row.lease_until < now or _holder_is_gone(row.holder))
            and self._claim(row.id, row.holder)
        ]
        verifier = SignatureVerifier(signing_secret)
        for row_id in taken:
            with self.session_factory() as session:
                row = session.get(PendingAnswer, row_id)
                body, content_type = row.body, row.content_type
            timestamp = str(int(time.time()))
            headers = {
                "content-type": content_type,
                "x-slack-request-timestamp": timestamp,
                "x-slack-signature": verifier.generate_signature(timestamp=timestamp, body=body),
            }
            request = BoltRequest(body=body, headers=headers, context={RECOVERED: row_id})
            try:
                app.dispatch(request)
            except Exception:  # one bad row must not stop the others; it stays claimed
                log.exception("could not answer recovered request %d", row_id)
        if taken:
            log.info("answering %d acknowledged requests a stopped server left", len(taken))
        return len(taken)

    def _claim(self, row_id: int, holder: str) -> bool:
        now = _now()
        with self.session_factory() as session, session.begin():
            claimed = session.execute(
                update(PendingAnswer)
                .where(PendingAnswer.id == row_id, PendingAnswer.holder == holder)
                .values(
                    holder=self.holder,
                    lease_until=now + LEASE,
                    attempts=PendingAnswer.attempts + 1,
                )
                .returning(PendingAnswer.id)
            ).first()
        return claimed is not None

    def start_recovering(self, app: App, signing_secret: str) -> threading.Event:
        """Recover now and every RECOVER_EVERY_SECONDS in a daemon thread; set the returned
        event to stop."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                try:
                    self.recover(app, signing_secret)
                except Exception:
                    log.exception("answer recovery failed; trying again later")
                stop.wait(RECOVER_EVERY_SECONDS)

        threading.Thread(target=loop, name="llmgov-recovery", daemon=True).start()
        return stop


class JournaledRespond(Respond):
    """Bolt's `respond`, marking the request's row `sending` before each POST."""

    def __init__(self, *, journal: AnswerJournal, **kwargs: Any):
        super().__init__(**kwargs)
        self.journal = journal

    def __call__(self, *args: Any, **kwargs: Any):
        try:
            self.journal.sending(self.response_url)
        except Exception:  # bookkeeping must not stop the answer
            log.exception("could not mark the answer as sending")
        return super().__call__(*args, **kwargs)


def _response_url(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    url = body.get("response_url")
    if (
        isinstance(url, str)
        and url
        and (body.get("command") or body.get("type") == "block_actions")
    ):
        return url[:500]
    return None


def _content_type(req: BoltRequest) -> str:
    values = req.headers.get("content-type") or ["application/x-www-form-urlencoded"]
    return (values[0] if isinstance(values, list | tuple) else values)[:100]


__all__ = ["LEASE", "RECOVERED", "AnswerJournal", "JournaledRespond", "this_process"]

"""Acknowledge at once, answer on a separate pool.

Slack gives up on a request that is not acknowledged within 3 seconds. Bolt calls `ack()`
from inside the listener, so a request is acknowledged only once a listener thread is free
to start it: when those threads also computed the answers (database, charts, Web API
calls), a burst of commands queued behind them and most acks came too late
(`benchmarks/load_serve.py`: 41 of 200 in time). Now a listener acknowledges, does what must
happen within Slack's 3-second trigger window itself (opening a modal), and hands the rest
of the work to the `AnswerPool`, which answers through the request's `response_url`. The
listener threads only ever wait on acks and modals, so acks stay fast under load.

`build_app` creates the pool and hands it to the listeners in `AppDeps.answers`. Without a
pool (`llmgov ask`, the demo, tests that call a listener directly) the answer runs in the
calling thread, as before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from llmgov.bot import metrics

if TYPE_CHECKING:
    from llmgov.bot.listeners.deps import AppDeps

log = logging.getLogger(__name__)

# Answers are mostly Python work under the GIL (SQL results, charts, Block Kit) with some
# waiting on the database and the Web API. Four threads overlap those waits; more would only
# compete for the GIL with the listener threads that must ack (`load_serve.py`: 4 threads
# kept every ack of a 200-command burst under 0.5 s).
ANSWER_WORKERS = 4
# An answer takes about 40 ms of CPU, so 1,000 queued answers are ~40 s of work on this
# 2-core machine. Past that the queue would only grow memory and delay every answer; a
# command that arrives then is told to ask again instead.
MAX_QUEUED_ANSWERS = 1000

SOMETHING_WENT_WRONG = "⚠️ Something went wrong on our side while answering; it has been logged."
TOO_BUSY = "⏳ I have too many questions in hand right now; please ask again in a minute."

# respond(text=..., response_type=...): Bolt's Respond, or anything called like it.
Responder = Callable[..., Any]


def report_failure(error: Exception, logger: logging.Logger, respond: Responder | None) -> None:
    """Log an unhandled error (the log handlers redact secrets) and tell the user, if we can.

    Used by Bolt's error handler (`bot.app.handle_error`) and by the answer pool, whose
    errors Bolt never sees.
    """
    logger.exception("listener failed: %s", type(error).__name__, exc_info=error)
    if respond is None:
        return
    try:
        respond(text=SOMETHING_WENT_WRONG, response_type="ephemeral")
    except Exception:  # the answer is best effort; the error is logged already
        logger.warning("could not tell the user about the failure")


class AnswerPool:
    """A fixed number of threads that compute and send answers after the ack.

    `submit` refuses work past `max_queued` (the caller tells the user to ask again);
    `wait_idle` waits until every submitted answer has finished, for tests and shutdown.
    """

    def __init__(self, workers: int | None = None, max_queued: int | None = None):
        # bot.answer_journal.AnswerJournal, set by build_app: each answer, once sent, is
        # marked answered there (so a restart does not send it again)
        self.journal: Any = None
        self.workers = workers or ANSWER_WORKERS
        self.max_queued = max_queued or MAX_QUEUED_ANSWERS
        self._executor = ThreadPoolExecutor(
            max_workers=self.workers, thread_name_prefix="llmgov-answer"
        )
        self._unfinished = 0
        self._idle = threading.Condition()

    def submit(self, work: Callable[[], None], respond: Responder | None, logger: logging.Logger):
        """Run `work` on the pool; an exception there is reported like a listener error.
        False (and nothing runs) when `max_queued` answers are already waiting."""
        with self._idle:
            if self._unfinished >= self.max_queued:
                metrics.inc("llmgov_answers_total", {"outcome": "refused_busy"})
                return False
            self._unfinished += 1
            metrics.set("llmgov_answers_unfinished", None, self._unfinished)
        try:
            self._executor.submit(self._run, work, respond, logger)
        except RuntimeError:  # shut down: the app is stopping
            self._finished()
            raise
        return True

    def _run(self, work: Callable[[], None], respond: Responder | None, logger: logging.Logger):
        try:
            work()
            metrics.inc("llmgov_answers_total", {"outcome": "answered"})
        except Exception as error:
            metrics.inc("llmgov_answers_total", {"outcome": "failed"})
            report_failure(error, logger, respond)
        finally:
            self._journal("answered", respond, logger)
            self._finished()

    def _journal(self, step: str, respond: Responder | None, logger: logging.Logger) -> None:
        """`queued` or `answered` in the journal, when there is one and a response_url."""
        if self.journal is None:
            return
        try:
            getattr(self.journal, step)(getattr(respond, "response_url", None))
        except Exception:  # the answer itself is not to fail on its bookkeeping
            logger.exception("could not mark the answer %s", step)

    def _finished(self) -> None:
        with self._idle:
            self._unfinished -= 1
            metrics.set("llmgov_answers_unfinished", None, self._unfinished)
            if self._unfinished == 0:
                self._idle.notify_all()

    @property
    def unfinished(self) -> int:
        """Answers submitted and not finished yet (queued or running)."""
        with self._idle:
            return self._unfinished

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no answer is queued or running; False if `timeout` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._unfinished == 0, timeout)

    def shutdown(self, wait: bool = True) -> None:
        """Refuse new answers; with `wait`, finish the queued ones first."""
        self._executor.shutdown(wait=wait)


def answer_later(
    deps: AppDeps,
    answer: Callable[[], None],
    *,
    respond: Responder | None,
    logger: logging.Logger,
) -> None:
    """Run `answer` on the app's answer pool (in this thread when there is none).

    `respond` is how the user is told when the answer fails or the pool is full; None for
    requests without a response_url (events), where both are only logged.
    """
    if deps.answers is None:
        answer()
        return
    if deps.answers.submit(answer, respond, logger):
        return
    logger.warning("answer pool full (%d queued): asked the user to retry", deps.answers.max_queued)
    if respond is not None:
        respond(text=TOO_BUSY, response_type="ephemeral", replace_original=False)
    deps.answers._journal("answered", respond, logger)  # told to ask again: nothing to redo


def ack_then_answer(
    ack: Callable[..., Any],
    deps: AppDeps,
    answer: Callable[[], None],
    *,
    respond: Responder,
    logger: logging.Logger,
    uses_trigger: bool = False,
) -> None:
    """Acknowledge now, then answer: on the answer pool, or, when the answer opens a modal
    (`uses_trigger`), right here. Slack accepts a trigger_id for 3 s only, too short to wait
    behind queued answers; an error there reaches Bolt's error handler like any other.

    An answer for the pool is marked `queued` in the journal (bot/answer_journal.py) before
    the ack, so a crash after the ack leaves it to be answered after the restart."""
    if not uses_trigger and deps.answers is not None:
        deps.answers._journal("queued", respond, logger)
    ack()
    if uses_trigger:
        answer()
    else:
        answer_later(deps, answer, respond=respond, logger=logger)


__all__ = [
    "ANSWER_WORKERS",
    "MAX_QUEUED_ANSWERS",
    "SOMETHING_WENT_WRONG",
    "TOO_BUSY",
    "AnswerPool",
    "ack_then_answer",
    "answer_later",
    "report_failure",
]

"""Run one trip or reset of the breaker, and SIGKILL this process at one named step.

    python crash_child.py trip|reset SLUG ACTOR STEP

The database is DATABASE_URL and AWS is AWS_ENDPOINT_URL (a moto server in the test's
process). Used by tests/guardrails/test_crash.py; exits 0 if the step was never reached.
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import UTC, datetime

from llmgov.guardrails import actions
from llmgov.models.base import make_engine, make_session_factory

NOW = datetime(2026, 3, 17, 10, 0, tzinfo=UTC)


def main() -> int:
    verb, slug, actor, step = sys.argv[1:5]

    def checkpoint(name: str) -> None:
        if name == step:
            os.kill(os.getpid(), signal.SIGKILL)

    actions.CHECKPOINT = checkpoint
    session_factory = make_session_factory(make_engine(os.environ["DATABASE_URL"]))
    run = actions.trip if verb == "trip" else actions.reset
    outcome = run(session_factory, slug, actor=actor, admins=(actor,), now=NOW)
    print(outcome.result.value, outcome.message)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Confirm before claiming: after a trip, read the deny back from IAM and check, with our
own evaluator (guardrails.evaluate), that it denies every spending action. The card says
"confirmed" only then; until then "not confirmed yet", and after CONFIRM_DEADLINE "not
confirmed after N minutes" with what to check.

IAM is eventually consistent: a policy that reads back may take a while to be enforced,
so a trip is confirmed no earlier than CONFIRM_AFTER after it. The reconciler runs this.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from llmgov.guardrails.aws import (
    IAM_TYPES,
    PROBED_ACTIONS,
    PROFILE_PROBED_ACTIONS,
    BreakerActionError,
    ClientFactory,
    _attached,
    _read_inline_policy,
    managed_policy_document,
)
from llmgov.guardrails.evaluate import Decision, evaluate

CONFIRM_AFTER = timedelta(seconds=60)
CONFIRM_DEADLINE = timedelta(minutes=15)


def check_action(action: dict[str, Any], clients: ClientFactory) -> str | None:
    """None when the deny of `action` is in IAM and denies every spending action; else why not."""
    if action["type"] not in IAM_TYPES:
        return None
    what = f"read back the deny on `{action['principal_name']}`"
    try:
        if action["type"] == "iam_attach":
            if not _attached(action, clients, what):
                return f"the managed policy is not attached to `{action['principal_name']}`"
            document = managed_policy_document(action, clients, what)
        else:
            document = _read_inline_policy(action, clients, what)
    except BreakerActionError as error:
        return str(error)
    if document is None:
        return f"the deny policy on `{action['principal_name']}` is missing"
    resource = action["document"]["Statement"][0]["Resource"]
    if resource == "*":
        probes = PROBED_ACTIONS
        resource = f"arn:aws:bedrock:us-east-1:{action['account']}:foundation-model/any"
    else:
        probes = PROFILE_PROBED_ACTIONS
    open_paths = [
        name
        for name in probes
        if evaluate([document], name, resource) is not Decision.EXPLICIT_DENY
    ]
    if open_paths:
        return f"the policy on `{action['principal_name']}` does not deny {', '.join(open_paths)}"
    return None


def confirmation(
    applied: list[dict[str, Any]], tripped_at: datetime, now: datetime, clients: ClientFactory
) -> dict[str, Any] | None:
    """The confirmation record for a trip (None: too early to say)."""
    if now - tripped_at < CONFIRM_AFTER:
        return None
    problems = [p for a in applied if (p := check_action(a, clients)) is not None]
    if not problems:
        return {"result": "confirmed", "at": now.isoformat()}
    if now - tripped_at < CONFIRM_DEADLINE:
        return None
    minutes = int((now - tripped_at).total_seconds() // 60)
    return {
        "result": "unconfirmed",
        "at": now.isoformat(),
        "detail": f"not confirmed after {minutes} minutes: " + "; ".join(problems),
    }


__all__ = ["CONFIRM_AFTER", "CONFIRM_DEADLINE", "check_action", "confirmation"]

"""What a failed Slack Web API call means for whoever retries it.

- `RateLimited`: Slack answered 429; wait Retry-After. Nothing was done.
- `Transient`: a 5xx, a timeout, a dropped connection: try again later. The call may or may
  not have taken effect (a post may exist), so a retry of a post must look for it first.
- `Final`: Slack refused with a reason (`channel_not_found`, `invalid_blocks`, ...); retrying
  will not help. The message names the error and, for the common ones, what to do.
"""

from __future__ import annotations

import http.client
import urllib.error

from slack_sdk.errors import SlackApiError, SlackRequestError

# Slack error codes that say "try again later"; any other error with a reason is final.
TRANSIENT_ERRORS = frozenset(
    {
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "ratelimited",
        "rate_limited",
        "team_added_to_org",
    }
)
# What to do about the final errors people actually meet.
ERROR_HINTS = {
    "not_in_channel": "invite the bot to the channel (/invite @llmgov), then replay",
    "channel_not_found": "check the channel id (LLMGOV_CHANNEL or the team's channel), then replay",
    "is_archived": "the channel is archived: point the team at a live channel, then replay",
    "missing_scope": "add the missing scope to the app manifest and reinstall the app",
    "invalid_auth": "check SLACK_BOT_TOKEN",
    "not_authed": "set SLACK_BOT_TOKEN",
    "invalid_blocks": "a message builder produced blocks Slack rejects; fix it and replay",
    "message_not_found": "the message to update no longer exists",
}


class RateLimited(Exception):
    def __init__(self, method: str, retry_after: float) -> None:
        super().__init__(f"Slack rate-limited {method}; retry after {retry_after:g}s")
        self.method = method
        self.retry_after = retry_after


class Transient(Exception):
    """The call may or may not have reached Slack; try again later."""


class Final(Exception):
    """Slack refused with a reason; retrying will not help."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


def classify(method: str, error: Exception) -> RateLimited | Transient | Final:
    """The kind of failure `error` (raised by a WebClient call to `method`) is."""
    if isinstance(error, SlackApiError):
        response = error.response
        status = getattr(response, "status_code", 200)
        code = response.get("error") if hasattr(response, "get") else None
        if status == 429:
            headers = {k.lower(): v for k, v in (getattr(response, "headers", {}) or {}).items()}
            value = headers.get("retry-after")
            retry_after = float(value[0] if isinstance(value, list) else value or 1)
            return RateLimited(method, max(retry_after, 1.0))
        if status >= 500 or code in TRANSIENT_ERRORS:
            return Transient(f"{method}: HTTP {status} {code or ''}".strip())
        hint = ERROR_HINTS.get(code or "", "")
        needed = response.get("needed") if hasattr(response, "get") else None
        detail = f" (needs {needed})" if needed else ""
        return Final(f"{method}: {code}{detail}" + (f": {hint}" if hint else ""), code)
    if isinstance(
        error,
        TimeoutError | ConnectionError | urllib.error.URLError | http.client.HTTPException,
    ):
        return Transient(f"{method}: {type(error).__name__}: {error}")
    if isinstance(error, SlackRequestError):
        return Transient(f"{method}: {error}")
    return Transient(f"{method}: unexpected {type(error).__name__}: {error}")

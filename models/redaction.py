"""Credentials in URLs are never shown.

A source configured as `http://user:password@host:9090` (Prometheus with basic auth, say)
is named in errors, findings, facts' dimensions, logs and Slack posts. `redact_url` and
`redact_urls_in` replace the userinfo (`user:password@`) by `[redacted]@`; nothing else of
the URL changes, so it still says which source is meant.
"""

from __future__ import annotations

import re

# scheme://userinfo@ : userinfo runs to the last "@" before the host, without "/", space
# or another "://"
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/@<>\"']*@")
REDACTED = "[redacted]"


def redact_urls_in(text: str) -> str:
    """`text` with the credentials of every URL in it replaced by `[redacted]`."""
    return _USERINFO.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)


def redact_url(url: str) -> str:
    """One URL without its credentials (the same URL when it has none)."""
    return redact_urls_in(url)


__all__ = ["REDACTED", "redact_url", "redact_urls_in"]

"""Series keys: the one text that names a fact's source series, and its readable form.

A collector builds the key from the raw dimensions of what it read (`series_key("focus",
account, region, service, usage type, ...)`); the key is part of each fact's natural key, so
it must stay stable. People read the same series through `describe_series_key`: the
dimensions without the empty ones and the hashes, the account labelled.
"""

from __future__ import annotations

import hashlib
import re

SERIES_KEY_MAX = 500  # String(500) in models/facts.py
SEPARATOR = "|"

_ACCOUNT = re.compile(r"\d{12}")
_DIGEST = re.compile(r"[0-9a-f]{12,64}")  # tag digests and hashed tails name nothing to a reader


def series_key(*parts: object) -> str:
    """A stable, readable key from the raw dimensions; hashed tail when it would not fit."""
    text = SEPARATOR.join("" if part is None else str(part) for part in parts)
    if len(text) <= SERIES_KEY_MAX:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:40]
    return f"{text[: SERIES_KEY_MAX - len(digest) - 1]}#{digest}"


def describe_series_key(key: str) -> str:
    """`focus|444455556666|us-east-1|Claude 3 Haiku||Usage||` → `account 444455556666 ·
    us-east-1 · Claude 3 Haiku · Usage`: what a person needs to find the spend in a bill.

    The first part (the collector's name) is left out: callers show the source beside it.
    A key that is not ours is returned as it is.
    """
    if SEPARATOR not in key:
        return key
    text, _, tail = key.partition("#")
    if tail and not _DIGEST.fullmatch(tail):
        text = key  # a '#' inside a dimension, not our hashed tail
    parts = text.split(SEPARATOR)[1:]
    readable = []
    for part in (p.strip() for p in parts):
        if _ACCOUNT.fullmatch(part):
            readable.append(f"account {part}")
        elif part and not _DIGEST.fullmatch(part):
            readable.append(part)
    return " · ".join(readable) or key


__all__ = ["SERIES_KEY_MAX", "describe_series_key", "series_key"]

"""Structured logs: one JSON object per line, secrets redacted.

The redaction is the Slack app's `bot.app.RedactSecrets` (the configured secrets from
`Settings.secrets()` and anything shaped like a Slack token, xoxb-/xapp-/...), applied as a
handler filter and once more to the finished line, so values passed as `extra=` fields or
inside exceptions are covered too.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from llmgov.bot.app import RedactSecrets
from llmgov.bot.settings import Settings

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """`{"ts": ..., "level": ..., "logger": ..., "message": ..., **extra, "exc": ...}`."""

    def __init__(self, redactor: RedactSecrets | None = None) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                entry[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        line = json.dumps(entry, default=str, ensure_ascii=False)
        return self.redactor.redact(line) if self.redactor else line


def configure_logging(
    settings: Settings,
    *,
    level: int = logging.INFO,
    json_lines: bool | None = None,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send the root logger's records to `stream` (stderr) as JSON lines (or text when
    LLMGOV_LOG_FORMAT=text), with secrets redacted. Replaces the root's handlers."""
    if json_lines is None:
        json_lines = os.environ.get("LLMGOV_LOG_FORMAT", "json").lower() != "text"
    redactor = RedactSecrets(settings.secrets())
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(redactor)
    if json_lines:
        handler.setFormatter(JsonFormatter(redactor))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


__all__ = ["JsonFormatter", "configure_logging"]

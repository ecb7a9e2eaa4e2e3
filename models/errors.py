"""Errors every layer may raise; the CLI maps them to exit codes (2 bad input, 1 failure)."""


class BadInput(ValueError):
    """The user's input was wrong: the message says what, and what to do instead."""


class SourceError(RuntimeError):
    """An external source (AWS, Prometheus, Slack) failed; the message names it."""

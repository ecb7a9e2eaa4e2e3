"""A stand-in for bot.scheduler in the serve tests: records how it was started."""

from __future__ import annotations

STARTED: list[dict] = []


class Handle:
    def __init__(self) -> None:
        self.stopped = False

    def shutdown(self) -> None:
        self.stopped = True


def start_background(**kwargs) -> Handle:
    STARTED.append(kwargs)
    return Handle()

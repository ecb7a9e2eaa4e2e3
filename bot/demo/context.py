"""What every step of `llmgov demo` shares: the database, the demo's clock, where to print,
and the few text helpers that keep its sections readable (headings, aligned tables)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TextIO

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from llmgov.bot.settings import Settings
from llmgov.collectors.billing_files import ImportReport
from llmgov.collectors.run import CollectReport


def demo_clock(as_of: date) -> datetime:
    """The instant the demo pretends it is: the last minute of the `as_of` day (UTC), so
    everything it collects counts as known on that day (`--as-of` answers see it)."""
    return datetime.combine(as_of + timedelta(days=1), time(), tzinfo=UTC) - timedelta(minutes=1)


def day_text(day: date) -> str:
    return f"{day.day} {day:%b %Y}"


@dataclass
class DemoRun:
    """The demo database, the day it runs as of, and what earlier steps produced."""

    engine: Engine
    session_factory: sessionmaker[Session]
    out: TextIO
    as_of: date
    billing: ImportReport | None = None  # the billing export step's report
    collection: CollectReport | None = None  # the usage collection step's report

    @property
    def clock(self) -> datetime:
        return demo_clock(self.as_of)

    @property
    def database_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def settings(self) -> Settings:
        """No Slack token and no governance channel: nothing can be sent from the demo."""
        return Settings(database_url=self.engine.url.render_as_string(hide_password=False))

    def say(self, text: str = "") -> None:
        print(text, file=self.out)

    def heading(self, text: str) -> None:
        self.say()
        self.say(text)
        self.say("=" * len(text))

    def table(
        self,
        columns: Sequence[str],
        rows: Iterable[Sequence[str]],
        *,
        right: Iterable[int] = (),
        indent: str = "  ",
    ) -> None:
        for line in table_lines(columns, rows, right=right):
            self.say(indent + line)


def table_lines(
    columns: Sequence[str], rows: Iterable[Sequence[str]], *, right: Iterable[int] = ()
) -> list[str]:
    """Columns two spaces apart, each as wide as its widest cell; `right` aligns numbers."""
    body = [tuple(row) for row in rows]
    widths = [max([len(columns[i]), *(len(row[i]) for row in body)]) for i in range(len(columns))]
    numeric = set(right)

    def line(cells: Sequence[str]) -> str:
        padded = (
            cell.rjust(width) if index in numeric else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )
        return "  ".join(padded).rstrip()

    return [line(columns), *(line(row) for row in body)]


__all__ = ["DemoRun", "day_text", "demo_clock", "table_lines"]

"""Draw charts in a process of their own, away from the requests being acknowledged.

A chart is ~100 ms of matplotlib holding the GIL, and it leaves ~4,500 objects of cyclic
garbage behind (figures, axes and artists point at each other). In the serving process
that garbage piles up until a full collection frees it: pauses of 30-60 ms that hold the
GIL and land on whichever request is being acknowledged at the time (Slack wants the ack
within 3 s; we promise 100 ms). `llmgov serve` draws in a `ChartWorker` instead: the chart
data goes in (a few hundred numbers), PNG bytes come out, the garbage stays in the worker.
`benchmarks/bench_commands.py` prints the serving process's collection pauses.

Without a worker (`llmgov ask`, tests, the digest's scheduled job) charts are drawn in the
calling thread, as before: `draw_spend_chart(None, ...)`.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from datetime import date

from llmgov.bot import metrics
from llmgov.bot.charts import render_spend_chart
from llmgov.commands.cost import ChartSeries

log = logging.getLogger(__name__)

# A chart takes ~0.1 s; far longer means the worker is stuck, and the answer goes out
# without its chart rather than waiting.
CHART_TIMEOUT_SECONDS = 20.0
# A fresh worker now and then returns whatever memory matplotlib's caches have grown to.
CHARTS_PER_PROCESS = 1000


class ChartFailed(RuntimeError):
    """The worker could not draw the chart (it died or took too long); it is replaced."""


class ChartWorker:
    """One worker process that draws charts; thread-safe, replaced when it dies or hangs.

    The process is forked from a forkserver that has imported matplotlib already, so
    replacing it takes milliseconds, and it never inherits the serving process's threads
    (forking a threaded process can copy a held lock into the child). It exits when the
    serving process is gone, however that ends (`_exit_with_the_server`), and the
    forkserver then exits too: a killed server leaves no processes behind.
    """

    def __init__(
        self,
        processes: int = 1,
        timeout: float = CHART_TIMEOUT_SECONDS,
        charts_per_process: int = CHARTS_PER_PROCESS,
    ):
        self.processes = processes
        self.timeout = timeout
        self.charts_per_process = charts_per_process
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["llmgov.bot.charts"])
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        # Only this process holds the sending end; a worker sees the pipe close when we end.
        self._lifeline, self._lifeline_writer = self._context.Pipe(duplex=False)
        self.drawn = 0  # charts drawn by the worker, the warm-up included

    def start(self) -> ChartWorker:
        """Start the process and draw one chart, so the first answer does not pay for the
        imports (about a second). If that fails, the server still starts: answers matter
        more than charts, and each chart tries a fresh worker."""
        try:
            self.render(_WARM_UP, "warm-up", "USD")
        except ChartFailed as error:
            log.warning("the chart worker did not start (%s); charts will retry it", error)
        return self

    def render(self, chart: ChartSeries, title: str, currency: str, *, dpi: int = 80) -> bytes:
        """`bot.charts.render_spend_chart` in the worker: the PNG bytes, or ChartFailed."""
        for _ in range(2):
            executor = self._pool()
            try:
                future = executor.submit(render_spend_chart, chart, title, currency, dpi=dpi)
            except BrokenProcessPool:  # it died between charts (killed, out of memory)
                self._replace(executor, "died")
                continue  # a fresh process draws this one
            try:
                png = future.result(timeout=self.timeout)
            except BrokenProcessPool as error:
                self._replace(executor, "died")
                metrics.inc("llmgov_charts_total", {"outcome": "failed"})
                raise ChartFailed("the chart process died; a new one is started") from error
            except FutureTimeout as error:
                self._replace(executor, "timed_out")
                metrics.inc("llmgov_charts_total", {"outcome": "failed"})
                raise ChartFailed(f"drawing took more than {self.timeout:g} s") from error
            with self._lock:
                self.drawn += 1
            metrics.inc("llmgov_charts_total", {"outcome": "drawn"})
            return png
        raise ChartFailed("the chart process could not be started")

    def shutdown(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=self.processes,
                    mp_context=self._context,
                    max_tasks_per_child=self.charts_per_process,
                    initializer=_exit_with_the_server,
                    initargs=(self._lifeline,),
                )
            return self._executor

    def _replace(self, executor: ProcessPoolExecutor, reason: str) -> None:
        """Drop a broken or stuck pool (killing its processes); the next chart starts anew.
        `reason`: died or timed_out."""
        log.warning("chart worker replaced: it %s", reason.replace("_", " "))
        metrics.inc("llmgov_chart_worker_replacements_total", {"reason": reason})
        with self._lock:
            if self._executor is executor:
                self._executor = None
        # ProcessPoolExecutor cannot stop a running task (Python 3.14 adds
        # terminate_workers); its process table is the only handle on a stuck child.
        for process in list(getattr(executor, "_processes", {}).values()):
            process.kill()
        executor.shutdown(wait=False, cancel_futures=True)


def _exit_with_the_server(lifeline) -> None:
    """In the worker: exit as soon as the serving process is gone.

    A pool worker waits on a queue whose other end it holds itself, so it never notices
    its parent dying. It also holds the forkserver's keep-alive pipe open. Without this
    watch, a server killed by SIGTERM or SIGKILL leaves both processes behind (~200 MiB)."""

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            lifeline.recv()  # nothing is ever sent: this returns when the server's end closes
        os._exit(0)

    threading.Thread(target=watch, name="llmgov-chart-lifeline", daemon=True).start()


def draw_spend_chart(
    worker: ChartWorker | None, chart: ChartSeries, title: str, currency: str, *, dpi: int = 80
) -> bytes:
    """The chart's PNG, drawn by `worker`, or in this thread when there is none."""
    if worker is None:
        return render_spend_chart(chart, title, currency, dpi=dpi)
    return worker.render(chart, title, currency, dpi=dpi)


# A two-day chart that exercises every part of the drawing (bars, lines, band, legend).
_WARM_UP = ChartSeries(
    days=(date(2026, 1, 1), date(2026, 1, 2)),
    daily=(1.0, 2.0),
    estimated=(False, True),
    month_days=(date(2026, 1, 1), date(2026, 1, 2)),
    month_actual=(1.0, None),
    projection=(None, 3.0),
    projection_low=(None, 2.5),
    projection_high=(None, 3.5),
    budget=4.0,
)

__all__ = ["CHART_TIMEOUT_SECONDS", "ChartFailed", "ChartWorker", "draw_spend_chart"]

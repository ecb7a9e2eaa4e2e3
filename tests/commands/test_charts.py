"""The spend chart: a real PNG from a real report, and the hand-placed ticks."""

from __future__ import annotations

import select
import struct
import subprocess
import sys
import time

import pytest

from llmgov.bot.charts import nice_ticks, render_spend_chart
from llmgov.commands.cost import build_cost_report, parse_cost_text
from tests.commands.world import AS_OF
from tests.support.processes import HAS_PROC, parent_of, running


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_chart_of_a_report_is_a_png(session, world):
    report = build_cost_report(session, parse_cost_text("search-summaries 30d", today=AS_OF))
    chart = report.chart
    # the series: 56 days of history ending today, the last two estimated from tokens
    assert chart.days[-1] == AS_OF and len(chart.days) == 56
    assert chart.estimated[-2:] == (True, True) and not any(chart.estimated[:-2])
    # this month: actual cumulative through the 20th, then the projection to the 30th
    assert chart.month_actual[19] == pytest.approx(float(report.month_to_date))
    assert chart.month_actual[20] is None and chart.projection[-1] is not None
    assert chart.projection[-1] == pytest.approx(float(report.projection.point), abs=0.01)
    assert chart.projection_low[-1] <= chart.projection[-1] <= chart.projection_high[-1]
    assert chart.budget == 3000.0
    png = render_spend_chart(chart, "LLM spend · search-summaries", "USD")
    assert png_size(png) == (720, 256)  # 9 x 3.2 inches at 80 dpi


def test_chart_without_spend_still_renders(session, world):
    report = build_cost_report(session, parse_cost_text("orphan-batch 2026-11", today=AS_OF))
    empty = report.chart.__class__(
        days=report.chart.days,
        daily=tuple(0.0 for _ in report.chart.days),
        estimated=report.chart.estimated,
        month_days=report.chart.month_days,
        month_actual=tuple(0.0 if v is not None else None for v in report.chart.month_actual),
        projection=report.chart.projection,
        projection_low=report.chart.projection_low,
        projection_high=report.chart.projection_high,
        budget=None,
    )
    assert png_size(render_spend_chart(empty, "x", "EUR"))[0] == 720


@pytest.mark.parametrize(
    ("top", "ticks"),
    [
        (100.0, [0, 25, 50, 75, 100]),
        (3200.0, [0, 1000, 2000, 3000]),
        (0.0, [0.0]),
        (7.3, [0, 2, 4, 6]),
    ],
)
def test_nice_ticks(top, ticks):
    assert nice_ticks(top) == pytest.approx(ticks)


@pytest.fixture
def chart_worker():
    from llmgov.bot.chart_worker import ChartWorker

    worker = ChartWorker()
    yield worker
    worker.shutdown()


def test_the_chart_worker_draws_the_same_png_as_the_thread(session, world, chart_worker):
    report = build_cost_report(session, parse_cost_text("search-summaries 30d", today=AS_OF))
    in_thread = render_spend_chart(report.chart, "LLM spend · search-summaries", "USD")
    in_worker = chart_worker.render(report.chart, "LLM spend · search-summaries", "USD")
    assert in_worker == in_thread
    assert chart_worker.drawn == 1


def replacements(reason: str) -> float:
    from llmgov.bot import metrics

    return metrics.REGISTRY.get("llmgov_chart_worker_replacements_total", {"reason": reason})


def worker_processes(worker) -> list:
    return list(worker._executor._processes.values())  # the pool keeps no public handle


def test_a_dead_chart_worker_is_replaced(session, world, chart_worker):
    from llmgov.bot.chart_worker import ChartFailed

    chart = build_cost_report(session, parse_cost_text("all 7d", today=AS_OF)).chart
    chart_worker.start()
    died = replacements("died")
    (first,) = worker_processes(chart_worker)
    first.kill()
    first.join(10)
    drawn = None
    for _ in range(2):  # the chart asked for as it dies may fail; the next one is drawn
        try:
            drawn = chart_worker.render(chart, "all", "USD")
            break
        except ChartFailed:
            continue
    assert drawn is not None and png_size(drawn) == (720, 256)
    (second,) = worker_processes(chart_worker)
    assert second.pid != first.pid and second.is_alive()
    assert replacements("died") == died + 1  # /metrics counts it


def test_a_stuck_chart_is_given_up_and_the_worker_replaced(session, world, chart_worker):
    from llmgov.bot.chart_worker import ChartFailed

    chart = build_cost_report(session, parse_cost_text("all 7d", today=AS_OF)).chart
    chart_worker.start()
    (first,) = worker_processes(chart_worker)
    chart_worker.timeout = 0.001  # no chart is drawn that fast
    timed_out = replacements("timed_out")
    with pytest.raises(ChartFailed, match=r"drawing took more than 0\.001 s"):
        chart_worker.render(chart, "all", "USD")
    assert replacements("timed_out") == timed_out + 1
    first.join(10)
    assert not first.is_alive()  # killed, not left running
    chart_worker.timeout = 20.0
    assert png_size(chart_worker.render(chart, "all", "USD")) == (720, 256)


@pytest.mark.skipif(not HAS_PROC, reason="reads /proc (Linux)")
def test_a_killed_server_leaves_no_chart_processes_behind():
    server_code = (
        "import time\n"
        "from llmgov.bot.chart_worker import ChartWorker\n"
        "worker = ChartWorker().start()\n"
        "(process,) = worker._executor._processes.values()\n"
        "print(process.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    server = subprocess.Popen([sys.executable, "-c", server_code], stdout=subprocess.PIPE)
    try:
        ready, _, _ = select.select([server.stdout], [], [], 60)
        assert ready, "the chart worker did not start"
        worker_pid = int(server.stdout.readline())
        forkserver_pid = parent_of(worker_pid)
        assert running(worker_pid) and running(forkserver_pid)
    finally:
        server.kill()  # SIGKILL: no shutdown code runs in the server
        server.wait()
    deadline = time.monotonic() + 20
    while (running(worker_pid) or running(forkserver_pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running(worker_pid), "the chart worker outlived the server"
    assert not running(forkserver_pid), "the forkserver outlived the server"


def test_a_worker_that_cannot_start_does_not_stop_the_server(caplog):
    from llmgov.bot.chart_worker import _WARM_UP, ChartWorker

    worker = ChartWorker(timeout=0.001)  # the warm-up cannot finish in time
    try:
        assert worker.start() is worker
        assert "the chart worker did not start" in caplog.text
        worker.timeout = 20.0
        assert worker.render(_WARM_UP, "again", "USD")[:4] == b"\x89PNG"
    finally:
        worker.shutdown()

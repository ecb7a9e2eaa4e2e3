"""Charts for Slack answers: matplotlib with the Agg backend (no display), PNG bytes out.

One figure, two panels:
- left: daily spend over the recent weeks (billed days solid, token-estimated days hatched);
- right: this month's cumulative spend, the projection to month end with its range as a
  band, and the budget as a horizontal line (where the budget is crossed is visible).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from datetime import date

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display, thread-safe when each call owns its figure

from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from llmgov.commands.cost import ChartSeries

BILLED = "#1264a3"
ESTIMATED = "#9bc3e6"
PROJECTION = "#e8912d"
BUDGET = "#c0392b"


def render_spend_chart(chart: ChartSeries, title: str, currency: str, *, dpi: int = 80) -> bytes:
    """The chart as PNG bytes. Uses `Figure` directly (not pyplot): no global state.

    Speed matters (it sits between the command and its answer): x positions are day
    numbers with a few hand-placed labels, and the layout is fixed, because matplotlib's
    date locators and constrained layout cost several hundred milliseconds a chart.
    """
    figure = Figure(figsize=(9, 3.2), dpi=dpi)
    figure.subplots_adjust(left=0.07, right=0.99, top=0.82, bottom=0.1, wspace=0.18)
    daily_axes, month_axes = figure.subplots(1, 2, width_ratios=(3, 2))
    symbol = _symbol(currency)

    # One PolyCollection for all bars: `bar()` makes one artist per day, several times slower.
    colours = [ESTIMATED if est else BILLED for est in chart.estimated]
    bars = [
        [(i - 0.42, 0.0), (i - 0.42, value), (i + 0.42, value), (i + 0.42, 0.0)]
        for i, value in enumerate(chart.daily)
    ]
    daily_axes.add_collection(PolyCollection(bars, facecolors=colours, linewidths=0))
    daily_axes.set_xlim(-0.6, max(len(bars) - 0.4, 0.6))
    daily_axes.set_ylim(0, max([*chart.daily, 1.0]) * 1.12)
    daily_axes.set_title("Daily spend", fontsize=10, loc="left")
    _day_ticks(daily_axes, chart.days)
    if any(chart.estimated):
        daily_axes.legend(
            handles=[Patch(color=ESTIMATED, label="estimated from tokens")],
            fontsize=8,
            frameon=False,
            loc="upper left",
        )

    month_positions = list(range(len(chart.month_days)))
    actual = [
        (i, v) for i, v in zip(month_positions, chart.month_actual, strict=True) if v is not None
    ]
    if actual:
        xs, ys = zip(*actual, strict=True)
        month_axes.plot(xs, ys, color=BILLED, linewidth=2, label="month to date")
    projected = [
        (i, p, lo, hi)
        for i, p, lo, hi in zip(
            month_positions,
            chart.projection,
            chart.projection_low,
            chart.projection_high,
            strict=True,
        )
        if p is not None
    ]
    if projected:
        xs, point, low, high = zip(*projected, strict=True)
        if actual:  # join the projection to the last actual point
            last_x, last_y = actual[-1]
            xs = (last_x, *xs)
            point, low, high = (last_y, *point), (last_y, *low), (last_y, *high)
        month_axes.fill_between(xs, low, high, color=PROJECTION, alpha=0.25, linewidth=0)
        month_axes.plot(xs, point, color=PROJECTION, linestyle="--", label="projection")
    if chart.budget is not None:
        month_axes.axhline(chart.budget, color=BUDGET, linewidth=1.2, label="budget")
    month_axes.set_title("This month, cumulative", fontsize=10, loc="left")
    month_axes.set_xlim(-0.5, max(len(month_positions) - 0.5, 0.5))
    _day_ticks(month_axes, chart.month_days)
    month_axes.legend(fontsize=8, frameon=False, loc="upper left")

    month_top = max(
        [v for v in (*chart.month_actual, *chart.projection_high) if v is not None]
        + ([chart.budget] if chart.budget is not None else [])
        + [1.0]
    )
    month_axes.set_ylim(0, month_top * 1.12)
    for axes, top in ((daily_axes, max([*chart.daily, 1.0])), (month_axes, month_top)):
        ticks = nice_ticks(top)
        axes.set_yticks(ticks, [_money_label(symbol, tick) for tick in ticks])
        axes.tick_params(labelsize=8)
        axes.spines[["top", "right"]].set_visible(False)
    figure.suptitle(title, fontsize=11, x=0.01, ha="left")

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _day_ticks(axes, days: Sequence[date], count: int = 5) -> None:
    """About `count` evenly spaced day labels on an axis whose x values are day numbers."""
    if not days:
        return
    step = max(1, round(len(days) / count))
    ticks = list(range(0, len(days), step))
    axes.set_xticks(ticks, [f"{days[i]:%d %b}" for i in ticks])


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """0 and round steps (1, 2, 2.5 or 5 x 10^k) up to `top`: fixed ticks, no locator."""
    raw = max(top, 1e-9) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [step * i for i in range(int(top // step) + 1)]


def _money_label(symbol: str, value: float) -> str:
    if value >= 10_000:
        return f"{symbol}{value / 1000:,.0f}k"
    return f"{symbol}{value:,.0f}" if value >= 10 or value == 0 else f"{symbol}{value:,.2f}"


def _symbol(currency: str) -> str:
    return {"USD": "$", "EUR": "€", "GBP": "£"}.get(currency, f"{currency} ")


__all__ = ["nice_ticks", "render_spend_chart"]

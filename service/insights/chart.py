"""A bar chart's geometry, computed on the server so the page needs no script to draw it."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .stats import DayCount

WIDTH = 720
HEIGHT = 240
LEFT = 40  # room for the value axis labels
RIGHT = 20  # room for half of the newest day's label, centred under its bar
BOTTOM = 34  # room for the day labels (larger on a phone: see site.css)
TOP = 20  # room for the top value label
GAP = 0.2  # the share of each slot left empty between bars


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # "Mar 2: 4 signups", the bar's tooltip


@dataclass(frozen=True)
class Tick:
    y: float
    value: int


@dataclass(frozen=True)
class DayLabel:
    x: float
    text: str
    anchor: str = "middle"  # SVG text-anchor


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    left: int
    right: int  # where the plot ends
    baseline: float
    bars: list[Bar]
    ticks: list[Tick]
    labels: list[DayLabel]
    total: int
    peak: int


def _nice_top(peak: int) -> int:
    """A round axis maximum at or above the peak: 1, 2, 5, 10, 20, 50..."""
    if peak <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(peak))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= peak)


def bar_chart(days: list[DayCount], label_every: int = 7) -> BarChart:
    peak = max((d.count for d in days), default=0)
    top = _nice_top(peak)
    plot_height = HEIGHT - TOP - BOTTOM
    baseline = TOP + plot_height
    slot = (WIDTH - LEFT - RIGHT) / max(len(days), 1)
    bars, labels = [], []
    for i, day in enumerate(days):
        height = plot_height * day.count / top
        x = LEFT + i * slot
        noun = "signup" if day.count == 1 else "signups"
        bars.append(
            Bar(
                x=round(x + slot * GAP / 2, 2),
                y=round(baseline - height, 2),
                width=round(slot * (1 - GAP), 2),
                height=round(height, 2),
                label=f"{day.day:%b} {day.day.day}: {day.count} {noun}",
            )
        )
        # Label the newest day and every `label_every`-th before it, so today always shows;
        # today's label ends at its bar's edge, so a larger font on a phone stays inside.
        if i == len(days) - 1:
            labels.append(DayLabel(round(x + slot, 2), f"{day.day:%b} {day.day.day}", "end"))
        elif (len(days) - 1 - i) % label_every == 0:
            labels.append(DayLabel(round(x + slot / 2, 2), f"{day.day:%b} {day.day.day}"))
    ticks = [
        Tick(y=round(baseline - plot_height * v / top, 2), value=v) for v in (0, top // 2, top)
    ]
    if top == 1:
        ticks = [ticks[0], ticks[-1]]
    return BarChart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right=WIDTH - RIGHT,
        baseline=baseline,
        bars=bars,
        ticks=ticks,
        labels=labels,
        total=sum(d.count for d in days),
        peak=peak,
    )

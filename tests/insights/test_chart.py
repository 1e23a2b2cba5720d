"""The signups chart's geometry: bars in proportion, a round axis, today's day labelled."""

from __future__ import annotations

from datetime import date, timedelta

from service.insights.chart import bar_chart
from service.insights.stats import DayCount

FIRST = date(2026, 3, 1)


def days(*counts: int) -> list[DayCount]:
    return [DayCount(FIRST + timedelta(days=i), n) for i, n in enumerate(counts)]


def test_bars_stand_on_one_baseline_in_proportion_to_the_counts():
    chart = bar_chart(days(0, 5, 10, 7))
    heights = [bar.height for bar in chart.bars]
    assert heights[0] == 0 and heights[2] == 2 * heights[1]
    assert {round(bar.y + bar.height, 2) for bar in chart.bars} == {chart.baseline}
    assert [t.value for t in chart.ticks] == [0, 5, 10]
    assert chart.bars[1].label == "Mar 2: 5 signups"
    assert (chart.total, chart.peak) == (22, 10)


def test_the_axis_rounds_up_and_an_empty_month_still_draws():
    assert bar_chart(days(3, 13)).ticks[-1].value == 20
    empty = bar_chart(days(*[0] * 30))
    assert [t.value for t in empty.ticks] == [0, 1]
    assert all(bar.height == 0 for bar in empty.bars)


def test_today_is_always_labelled_and_ends_inside_the_chart():
    chart = bar_chart(days(*range(30)))
    assert [label.text for label in chart.labels] == [
        "Mar 2",
        "Mar 9",
        "Mar 16",
        "Mar 23",
        "Mar 30",
    ]
    last = chart.labels[-1]
    assert last.anchor == "end" and last.x <= chart.width
    assert all(bar.x + bar.width <= chart.right for bar in chart.bars)

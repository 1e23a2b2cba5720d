"""The sequence file's pure parts: delays, and send windows in the subscriber's own zone."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from service.content.sequence import SequenceError, Window, parse_delay

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        (0, 0),
        (90, 90),  # a bare number is seconds
        ("0", 0),
        ("45", 45),
        ("45s", 45),
        ("10m", 600),
        ("2h", 7200),
        ("3d", 259_200),
        (" 2 d ", 172_800),  # spaces around and between
    ],
)
def test_every_unit_of_a_delay(written: object, seconds: int):
    assert parse_delay(written) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "written",
    [-1, True, 1.5, None, "", "2 weeks", "1w", "-1s", "1.5h", "h", "3dd", "1d2h", "٣d"],
)
def test_anything_else_is_no_delay(written: object):
    with pytest.raises(SequenceError, match="is not a duration"):
        parse_delay(written)


def window(hours: str = "9-17", days: str = "mon-fri") -> Window:
    return Window.parse({"hours": hours, "days": days})


def test_inside_the_window_it_goes_at_once():
    tuesday_ten = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)  # 10:00 in Berlin
    assert window().next_opening(tuesday_ten, BERLIN) == tuesday_ten


def test_before_and_after_the_hours():
    early = datetime(2026, 3, 3, 5, 0, tzinfo=UTC)  # Tuesday 06:00 in Berlin
    assert window().next_opening(early, BERLIN) == datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    late = datetime(2026, 3, 3, 17, 0, tzinfo=UTC)  # Tuesday 18:00: Wednesday 09:00
    assert window().next_opening(late, BERLIN) == datetime(2026, 3, 4, 8, 0, tzinfo=UTC)
    closing = datetime(2026, 3, 3, 16, 0, tzinfo=UTC)  # 17:00 sharp: the end is not inside
    assert window().next_opening(closing, BERLIN) == datetime(2026, 3, 4, 8, 0, tzinfo=UTC)


def test_a_weekend_waits_for_monday():
    friday_night = datetime(2026, 3, 6, 20, 0, tzinfo=UTC)
    assert window().next_opening(friday_night, BERLIN) == datetime(2026, 3, 9, 8, 0, tzinfo=UTC)


def test_a_window_wrapping_the_week_end():
    """fri-mon: Friday, Saturday, Sunday, Monday; Tuesday to Thursday wait for Friday."""
    wraps = window(hours="10-12", days="fri-mon")
    assert wraps.weekdays == frozenset({4, 5, 6, 0})
    wednesday = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    assert wraps.next_opening(wednesday, BERLIN) == datetime(2026, 3, 6, 9, 0, tzinfo=UTC)
    sunday_late = datetime(2026, 3, 8, 15, 0, tzinfo=UTC)
    assert wraps.next_opening(sunday_late, BERLIN) == datetime(2026, 3, 9, 9, 0, tzinfo=UTC)


def test_the_opening_keeps_local_time_across_daylight_saving_changes():
    """09:00 in Berlin is 08:00 UTC in winter and 07:00 in summer; in New York 09:00 is
    13:00 UTC in summer and 14:00 in winter: the opening follows the local clock."""
    every_day = window(days="mon-sun")
    saturday = datetime(2026, 3, 28, 18, 0, tzinfo=UTC)  # the clocks go forward that night
    assert every_day.next_opening(saturday, BERLIN) == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    autumn = datetime(2026, 10, 31, 22, 0, tzinfo=UTC)  # New York falls back on 1 November
    assert every_day.next_opening(autumn, NEW_YORK) == datetime(2026, 11, 1, 14, 0, tzinfo=UTC)


def test_an_opening_in_the_hour_that_does_not_exist_comes_after_it():
    """02:30 on the spring-forward night never happens in Berlin: the next instant at or
    after it inside the window is still a real instant, and never before the moment."""
    small_hours = window(hours="2-4", days="mon-sun")
    before = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)  # Sunday 00:00 in Berlin
    opening = small_hours.next_opening(before, BERLIN)
    assert opening >= before
    local = opening.astimezone(BERLIN)
    assert local.date() == datetime(2026, 3, 29).date() and time(2) <= local.time() < time(4)


@pytest.mark.parametrize(
    ("hours", "start", "end"),
    [("9-17", time(9), time(17)), ("08:30-20:00", time(8, 30), time(20)), ("0-24", time(0), None)],
)
def test_window_hours(hours: str, start: time, end: time | None):
    parsed = window(hours=hours)
    assert parsed.start == start
    assert parsed.end == (end or time(23, 59, 59, 999_999))


@pytest.mark.parametrize(
    "raw",
    [{"hours": "17-9"}, {"hours": "9-25"}, {"hours": "nine"}, {"days": "mon-funday"}, "9-17"],
)
def test_a_window_that_is_no_window_is_refused(raw: object):
    with pytest.raises(SequenceError):
        Window.parse(raw)

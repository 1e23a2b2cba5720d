"""Template filters of the owner's view: durations and UTC times, short and unambiguous."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Blueprint


def duration(value: timedelta, zero: str = "0 s") -> str:
    """`0.4 s`, `42 s`, `12 min`, `3 h 5 min`, `2 d 4 h`."""
    seconds = value.total_seconds()
    if seconds <= 0:
        return zero
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def when(value: datetime | str | None, seconds: bool = False) -> str:
    """A UTC time as `2026-03-02 15:04 UTC` (an ISO string from records.describe too)."""
    if value is None:
        return "\u2013"  # an en dash: nothing recorded
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).strftime(
        "%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC"
    )


def register(bp: Blueprint) -> None:
    bp.add_app_template_filter(duration, "duration")
    bp.add_app_template_filter(when, "when")

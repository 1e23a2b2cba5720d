"""The one clock: timezone-aware UTC, so tests can travel in time."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)

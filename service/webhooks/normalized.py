"""The event every provider's payload becomes, and the ways a webhook request is refused."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .. import untrusted_json

HARD_BOUNCE = "hard_bounce"
SOFT_BOUNCE = "soft_bounce"
COMPLAINT = "complaint"
OTHER = "other"
KINDS = (HARD_BOUNCE, SOFT_BOUNCE, COMPLAINT, OTHER)
# Signed timestamps older (or further ahead) than this are refused: a captured request
# cannot be played back later.
MAX_AGE = timedelta(minutes=5)


class Forbidden(Exception):
    """The request is not provably from the provider: 403, nothing changes."""


class Malformed(Exception):
    """The request is authentic (or unverifiable) but cannot be read: 400."""


class Unavailable(Exception):
    """The request cannot be checked right now (the signing certificate did not load): 503,
    so the provider tries again later."""


@dataclass(frozen=True)
class Event:
    provider: str
    event_id: str
    kind: str
    email: str
    occurred_at: datetime | None
    detail: str | None
    nonce: str | None = None  # a per-request value that must never be seen twice

    def __post_init__(self) -> None:
        if not (isinstance(self.event_id, str) and 0 < len(self.event_id) <= 512):
            raise Malformed("the event has no usable id")
        if not (isinstance(self.email, str) and 0 < len(self.email) <= 320):
            raise Malformed("the event names no address")
        if self.kind not in KINDS:
            raise ValueError(f"unknown event kind {self.kind!r}")


def load_json(body: bytes) -> Any:
    try:
        return untrusted_json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Malformed("the body is not JSON") from None


def load_object(body: bytes, what: str) -> dict:
    """The body as a JSON object, or Malformed naming what the provider should have sent."""
    payload = load_json(body)
    if not isinstance(payload, dict):
        raise Malformed(f"{what} is a JSON object")
    return payload


def text(value: object) -> str | None:
    """A provider's free-text field, or None if it is missing or not text."""
    return value if isinstance(value, str) and value else None


def parse_time(value: object) -> datetime | None:
    """ISO 8601 text or Unix seconds, as aware UTC; None when absent or unreadable."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    return None


def fresh(timestamp: object, now: datetime) -> bool:
    """Is this signed Unix timestamp (text or number) within MAX_AGE of now?"""
    try:
        seconds = float(timestamp)
    except (TypeError, ValueError):
        return False
    return abs(now.timestamp() - seconds) <= MAX_AGE.total_seconds()

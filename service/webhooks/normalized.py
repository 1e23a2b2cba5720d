"""The event every provider's payload becomes, and the ways a webhook request is refused."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..core import untrusted_json
from ..core.models import EventKind

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
    kind: EventKind
    email: str
    occurred_at: datetime | None
    detail: str | None
    nonce: str | None = None  # a per-request value that must never be seen twice
    # The Message-ID header of the email reported on, where the provider quotes it: a late
    # complaint names the email it is about, which need not be the last one sent.
    message_id: str | None = None

    @classmethod
    def read(
        cls,
        provider: str,
        event_id: object,
        kind: EventKind,
        email: object,
        occurred_at: datetime | None,
        detail: str | None,
        nonce: str | None = None,
        message_id: object = None,
    ) -> Event:
        """An event from a payload's fields, which may hold anything: Malformed unless the
        id and the address are text that fits the columns. A Message-ID that is not text of
        a Message-ID's size is left out (the event still counts, attributed to no email)."""
        if not (isinstance(event_id, str) and 0 < len(event_id) <= 512):
            raise Malformed("the event has no usable id")
        if not (isinstance(email, str) and 0 < len(email) <= 320):
            raise Malformed("the event names no address")
        named = message_id.strip() if isinstance(message_id, str) else ""
        return cls(provider, event_id, kind, email, occurred_at, detail, nonce, _bracketed(named))


def _bracketed(message_id: str) -> str | None:
    """A Message-ID as our rows keep it, <left@right>: providers quote it with or without
    the angle brackets."""
    bare = message_id.removeprefix("<").removesuffix(">")
    return f"<{bare}>" if bare and len(bare) <= 253 and "@" in bare else None


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
    if not isinstance(timestamp, str | int | float):
        return False
    try:
        seconds = float(timestamp)
    except ValueError:
        return False
    return abs(now.timestamp() - seconds) <= MAX_AGE.total_seconds()

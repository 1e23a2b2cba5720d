"""Signed, URL-safe tokens for unsubscribe, download and confirmation links."""

from __future__ import annotations

from itsdangerous import BadData, URLSafeSerializer, URLSafeTimedSerializer

UNSUBSCRIBE = "unsubscribe"
GUIDE = "guide"
CONFIRM = "confirm"


def _keys(secret_keys: tuple[str, ...]) -> list[str]:
    # SECRET_KEY lists the newest first; itsdangerous signs with the last of its list.
    return list(reversed(secret_keys))


def make_token(secret_keys: tuple[str, ...], purpose: str, subscriber_id: int) -> str:
    """A token that never expires (unsubscribe and guide links must work for years)."""
    return URLSafeSerializer(_keys(secret_keys), salt=purpose).dumps(subscriber_id)


def read_token(secret_keys: tuple[str, ...], purpose: str, token: str) -> int | None:
    try:
        value = URLSafeSerializer(_keys(secret_keys), salt=purpose).loads(token)
    except (BadData, UnicodeError, ValueError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def make_timed_token(secret_keys: tuple[str, ...], purpose: str, subscriber_id: int) -> str:
    return URLSafeTimedSerializer(_keys(secret_keys), salt=purpose).dumps(subscriber_id)


def read_timed_token(
    secret_keys: tuple[str, ...], purpose: str, token: str, max_age: int
) -> tuple[int | None, bool]:
    """(subscriber id, expired): an expired but genuine token still names its subscriber."""
    serializer = URLSafeTimedSerializer(_keys(secret_keys), salt=purpose)
    try:
        return serializer.loads(token, max_age=max_age), False
    except BadData as exc:
        payload = getattr(exc, "payload", None)
        if payload is not None and exc.__class__.__name__ == "SignatureExpired":
            return serializer.load_payload(payload), True
        return None, False
    except (UnicodeError, ValueError):
        return None, False

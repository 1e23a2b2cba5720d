"""Signed, URL-safe tokens for unsubscribe, download and confirmation links."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Protocol, TypeGuard

from itsdangerous import BadData, URLSafeSerializer, URLSafeTimedSerializer

UNSUBSCRIBE = "unsubscribe"
GUIDE = "guide"
CONFIRM = "confirm"


def guide_purpose(magnet_id: int | None) -> str:
    """The default magnet's guide links keep GUIDE; another magnet's name it."""
    return GUIDE if magnet_id is None else f"{GUIDE}:{magnet_id}"


class Holder(Protocol):
    """Whom a token is made for: a subscriber row (or the preview's sample)."""

    id: int
    token_key: str


@dataclass(frozen=True)
class Claim:
    """What a genuine token says: the subscriber id, and the row's token key when it has one."""

    subscriber_id: int
    token_key: str | None  # None: an id-only token, made before migration 0006
    # The magnet of the email an unsubscribe link came in (None: older links, and others).
    magnet_id: int | None = None


def new_token_key() -> str:
    """A subscriber row's own random value: tokens name it beside the id, so a token of an
    erased person never matches whoever gets a row later."""
    return secrets.token_urlsafe(16)


def binds(claim: Claim, token_key: str, legacy_tokens: bool) -> bool:
    """Whether a genuine token was made for the row holding this key: id-only tokens count
    only for rows that existed when they were made (legacy_tokens)."""
    if claim.token_key is None:
        return legacy_tokens
    return hmac.compare_digest(claim.token_key, token_key)


def _keys(secret_keys: tuple[str, ...]) -> list[str]:
    # SECRET_KEY lists the newest first; itsdangerous signs with the last of its list.
    return list(reversed(secret_keys))


def _is_id(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _claim(value: object) -> Claim | None:
    if _is_id(value):
        return Claim(value, None)
    if (
        isinstance(value, list)
        and len(value) in (2, 3)
        and _is_id(value[0])
        and isinstance(value[1], str)
    ):
        magnet = value[2] if len(value) == 3 else None
        if magnet is not None and not _is_id(magnet):
            return None
        return Claim(value[0], value[1], magnet)
    return None


def make_token(
    secret_keys: tuple[str, ...], purpose: str, holder: Holder, magnet_id: int | None = None
) -> str:
    """A token that never expires (unsubscribe and guide links must work for years);
    `magnet_id`: the magnet the email is about (an unsubscribe link offers to stop only it)."""
    payload: list[object] = [holder.id, holder.token_key]
    if magnet_id is not None:
        payload.append(magnet_id)
    return URLSafeSerializer(_keys(secret_keys), salt=purpose).dumps(payload)


def read_token(secret_keys: tuple[str, ...], purpose: str, token: str) -> Claim | None:
    try:
        value = URLSafeSerializer(_keys(secret_keys), salt=purpose).loads(token)
    except (BadData, UnicodeError, ValueError):
        return None
    return _claim(value)


def make_timed_token(secret_keys: tuple[str, ...], purpose: str, holder: Holder) -> str:
    serializer = URLSafeTimedSerializer(_keys(secret_keys), salt=purpose)
    return serializer.dumps([holder.id, holder.token_key])


def read_timed_token(
    secret_keys: tuple[str, ...], purpose: str, token: str, max_age: int
) -> tuple[Claim | None, bool]:
    """(claim, expired): an expired but genuine token still names its subscriber."""
    serializer = URLSafeTimedSerializer(_keys(secret_keys), salt=purpose)
    try:
        return _claim(serializer.loads(token, max_age=max_age)), False
    except BadData as exc:
        payload = getattr(exc, "payload", None)
        if payload is not None and exc.__class__.__name__ == "SignatureExpired":
            return _claim(serializer.load_payload(payload)), True
        return None, False
    except (UnicodeError, ValueError):
        return None, False

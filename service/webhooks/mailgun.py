"""Mailgun: an HMAC-SHA256 of (timestamp, token) with the webhook signing key."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from werkzeug.datastructures import Headers

from ..core.models import EventKind
from ..core.settings import Settings
from .normalized import (
    Event,
    Forbidden,
    Malformed,
    fresh,
    load_object,
    parse_time,
    text,
)

NAME = "mailgun"
SEVERITY_KINDS = {"permanent": EventKind.HARD_BOUNCE, "temporary": EventKind.SOFT_BOUNCE}


class Mailgun:
    """Mailgun: a Provider (see provider.py)."""

    name = NAME

    def configured(self, settings: Settings) -> bool:
        return settings.mailgun_webhook_signing_key is not None

    def receive(
        self, body: bytes, headers: Headers, settings: Settings, now: datetime
    ) -> list[Event]:
        payload = load_object(body, "a Mailgun webhook")
        token = verify(payload.get("signature"), settings.mailgun_webhook_signing_key or "", now)
        data = payload.get("event-data")
        if not isinstance(data, dict):
            raise Malformed("the webhook has no event-data")
        name = data.get("event")
        if name == "failed":
            kind = SEVERITY_KINDS.get(text(data.get("severity")) or "", EventKind.OTHER)
        elif name == "complained":
            kind = EventKind.COMPLAINT
        else:
            # Recorded all the same: the signature does not cover event-data, so the token of
            # every request must be remembered, or a captured "delivered" request could be
            # replayed within the window with a forged complaint inside.
            kind = EventKind.OTHER
        status = data.get("delivery-status")
        status = status if isinstance(status, dict) else {}
        detail = text(status.get("description")) or text(status.get("message"))
        return [
            Event.read(
                provider=NAME,
                event_id=data.get("id"),
                kind=kind,
                email=data.get("recipient"),
                occurred_at=parse_time(data.get("timestamp")),
                detail=detail or text(data.get("reason")),
                nonce=token,
                message_id=_message_id(data),
            )
        ]


def _message_id(data: dict) -> object:
    """The Message-ID header of the email reported on (event-data.message.headers)."""
    message = data.get("message")
    headers = message.get("headers") if isinstance(message, dict) else None
    return headers.get("message-id") if isinstance(headers, dict) else None


def verify(signature: object, key: str, now: datetime) -> str:
    """Check the signature block; return its token, which must never be accepted twice."""
    if not isinstance(signature, dict):
        raise Forbidden("the webhook is not signed")
    timestamp, token, digest = (
        signature.get("timestamp"),
        signature.get("token"),
        signature.get("signature"),
    )
    if isinstance(timestamp, int) and not isinstance(timestamp, bool):
        timestamp = str(timestamp)
    if not (
        isinstance(timestamp, str)
        and isinstance(token, str)
        and isinstance(digest, str)
        and timestamp
        and token
        and digest
        and key
    ):
        raise Forbidden("the signature block is incomplete")
    expected = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), digest.lower().encode()):
        raise Forbidden("the signature does not match")
    if not fresh(timestamp, now):
        raise Forbidden("the signature is too old (or from the future)")
    if len(token) > 128:  # the nonce column's width
        raise Forbidden("the token is too long")
    return token

"""SendGrid: an ECDSA (P-256, SHA-256) signature over the timestamp header and the raw body."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from werkzeug.datastructures import Headers

from ..core.models import EventKind
from ..core.settings import Settings, sendgrid_public_key
from .normalized import (
    Event,
    Forbidden,
    Malformed,
    fresh,
    load_json,
    parse_time,
    text,
)

NAME = "sendgrid"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


class SendGrid:
    """SendGrid: a Provider (see provider.py)."""

    name = NAME

    def configured(self, settings: Settings) -> bool:
        return settings.sendgrid_webhook_public_key is not None

    def receive(
        self, body: bytes, headers: Headers, settings: Settings, now: datetime
    ) -> list[Event]:
        verify(body, headers, settings.sendgrid_webhook_public_key or "", now)
        batch = load_json(body)
        if not isinstance(batch, list):
            raise Malformed("a SendGrid webhook is a JSON array of events")
        events = []
        for item in batch:
            if not isinstance(item, dict):
                raise Malformed("an event is not an object")
            kind = _kind(item)
            if kind is None:
                continue  # deliveries, opens, clicks, deferrals: nothing to act on
            events.append(
                Event.read(
                    provider=NAME,
                    event_id=item.get("sg_event_id"),
                    kind=kind,
                    email=item.get("email"),
                    occurred_at=parse_time(item.get("timestamp")),
                    detail=text(item.get("reason")) or text(item.get("status")),
                    message_id=item.get("smtp-id"),  # the email's Message-ID header
                )
            )
        return events


def _kind(item: dict) -> EventKind | None:
    name = item.get("event")
    if name == "bounce":
        # "blocked" is a refusal the receiver may lift (reputation, content); "bounce" is not.
        return EventKind.SOFT_BOUNCE if item.get("type") == "blocked" else EventKind.HARD_BOUNCE
    if name == "spamreport":
        return EventKind.COMPLAINT
    if name == "dropped":
        return EventKind.OTHER
    return None


def verify(body: bytes, headers: Headers, public_key: str, now: datetime) -> None:
    signature = headers.get(SIGNATURE_HEADER)
    timestamp = headers.get(TIMESTAMP_HEADER)
    if not signature or not timestamp or not public_key:
        raise Forbidden("the webhook is not signed")
    try:
        _key(public_key).verify(
            base64.b64decode(signature, validate=True),
            timestamp.encode() + body,
            ec.ECDSA(hashes.SHA256()),
        )
    except (binascii.Error, ValueError, InvalidSignature):
        raise Forbidden("the signature does not match") from None
    if not fresh(timestamp, now):
        raise Forbidden("the signature is too old (or from the future)")


@lru_cache(maxsize=4)
def _key(raw: str) -> ec.EllipticCurvePublicKey:
    return sendgrid_public_key(raw)  # checked when the settings were read

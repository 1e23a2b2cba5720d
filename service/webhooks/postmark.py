"""Postmark: it does not sign, so the webhook URL carries a secret (Basic auth or a header)."""

from __future__ import annotations

import hmac
from datetime import datetime

from werkzeug.datastructures import Authorization, Headers

from ..core.models import EventKind
from ..core.settings import Settings
from .normalized import (
    Event,
    Forbidden,
    Malformed,
    load_object,
    parse_time,
    text,
)

NAME = "postmark"
TOKEN_HEADER = "X-Postmark-Token"
BOUNCE_KINDS = {
    "HardBounce": EventKind.HARD_BOUNCE,
    "SoftBounce": EventKind.SOFT_BOUNCE,
    "Transient": EventKind.SOFT_BOUNCE,
}


class Postmark:
    """Postmark: a Provider (see provider.py)."""

    name = NAME

    def configured(self, settings: Settings) -> bool:
        return settings.postmark_webhook_token is not None

    def receive(
        self, body: bytes, headers: Headers, settings: Settings, now: datetime
    ) -> list[Event]:
        verify(headers, settings.postmark_webhook_token or "")
        record = load_object(body, "a Postmark webhook")
        record_type = record.get("RecordType")
        if record_type == "Bounce":
            kind = BOUNCE_KINDS.get(text(record.get("Type")) or "", EventKind.OTHER)
        elif record_type == "SpamComplaint":
            kind = EventKind.COMPLAINT
        else:
            return []  # deliveries, opens, clicks, subscription changes: nothing to act on
        event_id = record.get("ID")
        if isinstance(event_id, bool) or not isinstance(event_id, int | str):
            raise Malformed("the record has no ID")
        return [
            Event.read(
                provider=NAME,
                event_id=str(event_id),
                kind=kind,
                email=record.get("Email"),
                occurred_at=parse_time(record.get("BouncedAt")),
                detail=text(record.get("Details")) or text(record.get("Description")),
            )
        ]


def verify(headers: Headers, token: str) -> None:
    """The Basic-auth password (any user name) or the X-Postmark-Token header must be the
    token; compared in constant time."""
    auth = Authorization.from_header(headers.get("Authorization"))
    offered = [headers.get(TOKEN_HEADER), auth.password if auth else None]
    expected = token.encode()
    # Both compared whatever the first gave, so the time taken tells nothing.
    matches = [hmac.compare_digest(expected, (o or "").encode()) for o in offered]
    if not token or not any(matches):
        raise Forbidden("the Postmark token is missing or wrong")

"""The consent ledger: append-only records of what each person agreed to, where and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..content.sequence import Consent
from ..core.extensions import db
from ..core.models import ConsentAction, ConsentRecord, Subscriber


@dataclass(frozen=True)
class RequestMeta:
    """Where a consent or withdrawal came from."""

    source: str
    ip: str | None
    user_agent: str | None
    page_url: str | None


def record(
    subscriber: Subscriber,
    action: ConsentAction,
    consent: Consent,
    meta: RequestMeta,
    now: datetime,
    magnet_id: int | None = None,
) -> ConsentRecord:
    """Append one entry; `magnet_id` None: about all magnets (a one-click withdrawal)."""
    entry = ConsentRecord(
        subscriber_id=subscriber.id,
        magnet_id=magnet_id,
        action=action,
        text=consent.text,
        text_version=consent.version,
        text_sha256=consent.sha256,
        source=meta.source,
        page_url=meta.page_url,
        ip=meta.ip,
        user_agent=(meta.user_agent or "")[:512] or None,
        created_at=now,
    )
    db.session.add(entry)
    return entry

"""Housekeeping: unconfirmed double opt-in signups are purged after 30 days."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete

from .clock import utcnow
from .extensions import db
from .models import Subscriber, SubscriberStatus

UNCONFIRMED_TTL = timedelta(days=30)


def purge_unconfirmed() -> int:
    """Delete signups never confirmed: they gave no complete consent, so we keep nothing."""
    cutoff = utcnow() - UNCONFIRMED_TTL
    result = db.session.execute(
        delete(Subscriber).where(
            Subscriber.status == SubscriberStatus.PENDING,
            Subscriber.created_at < cutoff,
            # Someone coming back after an opt-out is pending from that day, not from the
            # day they first signed up. (Their address stays suppressed if they are purged.)
            Subscriber.updated_at < cutoff,
        )
    )
    db.session.commit()
    return result.rowcount

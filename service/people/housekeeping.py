"""Housekeeping: unconfirmed double opt-in signups are purged after 30 days."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete

from ..core.extensions import db, rowcount
from ..core.models import Subscriber, SubscriberStatus
from ..sending.context import Context

UNCONFIRMED_TTL = timedelta(days=30)


def purge_unconfirmed(ctx: Context) -> int:
    """Delete signups never confirmed: they gave no complete consent, so we keep nothing."""
    cutoff = ctx.now() - UNCONFIRMED_TTL
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
    return rowcount(result)

"""Double opt-in: the confirmation click starts the guide and the drip."""

from __future__ import annotations

from datetime import timedelta

from . import consent, runtime
from .clock import utcnow
from .extensions import db
from .models import Subscriber, SubscriberStatus
from .schedule import resume_drip

CONFIRM_MAX_AGE = timedelta(hours=72)


def confirm(subscriber_id: int, meta: consent.RequestMeta) -> tuple[Subscriber | None, list[int]]:
    """Confirm a pending subscriber; return it and the ids of emails to send now."""
    subscriber = db.session.get(Subscriber, subscriber_id, with_for_update=True)
    if subscriber is None or subscriber.status != SubscriberStatus.PENDING:
        db.session.rollback()
        return subscriber, []
    now = utcnow()
    subscriber.status = SubscriberStatus.ACTIVE
    subscriber.confirmed_at = now
    consent.record(subscriber, "confirmation", runtime.sequence().consent, meta, now)
    first = resume_drip(subscriber, now, runtime.sequence(), runtime.mail_from())
    db.session.commit()
    return subscriber, [first.id] if first is not None else []

"""Double opt-in: the confirmation click starts the guide and the drip."""

from __future__ import annotations

from datetime import timedelta

from . import consent, runtime
from .clock import utcnow
from .extensions import db
from .models import Subscriber, SubscriberStatus
from .schedule import recent_confirmation, resume_drip, schedule_confirmation

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


def resend_confirmation(subscriber: Subscriber) -> list[int]:
    """A new confirmation link for a pending subscriber, at most one a day."""
    now = utcnow()
    if subscriber.status != SubscriberStatus.PENDING or recent_confirmation(subscriber.id, now):
        db.session.rollback()
        return []
    email = schedule_confirmation(subscriber, now, runtime.sequence(), runtime.mail_from())
    db.session.commit()
    return [email.id]

"""Unsubscribing: flip the state, record the withdrawal, cancel what is scheduled, at once."""

from __future__ import annotations

from . import consent, runtime
from .clock import utcnow
from .extensions import db
from .models import Subscriber, SubscriberStatus
from .schedule import cancel_open
from .suppression import suppress


def unsubscribe(subscriber_id: int, meta: consent.RequestMeta) -> Subscriber | None:
    """Idempotent: a second call changes nothing and records nothing."""
    subscriber = db.session.get(Subscriber, subscriber_id, with_for_update=True)
    if subscriber is None:
        return None
    if subscriber.status != SubscriberStatus.UNSUBSCRIBED:
        now = utcnow()
        subscriber.status = SubscriberStatus.UNSUBSCRIBED
        subscriber.unsubscribed_at = now
        consent.record(subscriber, "withdrawal", runtime.sequence().consent, meta, now)
        cancel_open(subscriber.id)
        suppress(subscriber.email, "unsubscribed")
    db.session.commit()
    return subscriber

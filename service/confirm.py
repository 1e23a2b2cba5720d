"""Confirmation: the link emailed to an address proves its owner asked; it starts (or
restarts) the guide and the drip, and applies what a repeat signup asked to change."""

from __future__ import annotations

from datetime import datetime, timedelta

from . import consent, runtime
from .clock import utcnow
from .extensions import db
from .models import Subscriber, SubscriberStatus
from .schedule import recent_confirmation, resume_drip, schedule_confirmation, schedule_resend
from .sequence import Sequence
from .suppression import lift

CONFIRM_MAX_AGE = timedelta(hours=72)


def confirm(subscriber_id: int, meta: consent.RequestMeta) -> tuple[Subscriber | None, list[int]]:
    """Confirm a pending subscriber; return it and the ids of emails to send now."""
    subscriber = db.session.get(Subscriber, subscriber_id, with_for_update=True)
    if subscriber is None or subscriber.status != SubscriberStatus.PENDING:
        db.session.rollback()
        return subscriber, []
    now = utcnow()
    subscriber.confirmed_at = now
    subscriber.first_name = subscriber.requested_first_name or subscriber.first_name
    subscriber.time_zone = subscriber.requested_time_zone or subscriber.time_zone
    subscriber.requested_first_name = subscriber.requested_time_zone = None
    consent.record(subscriber, "confirmation", runtime.sequence().consent, meta, now)
    ids = reinstate(subscriber, now, runtime.sequence(), runtime.mail_from())
    db.session.commit()
    return subscriber, ids


def reinstate(subscriber: Subscriber, now: datetime, sequence: Sequence, sender: str) -> list[int]:
    """Active, unsuppressed, the drip resumed where it stopped, and the guide (again, at most
    once a day): the emails to send now. Only for someone who proved they own the address."""
    subscriber.status = SubscriberStatus.ACTIVE
    subscriber.unsubscribed_at = None
    lift(subscriber.email)
    resumed = resume_drip(subscriber, now, sequence, sender)
    if resumed is not None and resumed.step_id == sequence.first.id:
        return [resumed.id]  # the guide never went out: this is it
    resend = schedule_resend(subscriber, now, sequence, sender)
    return [resend.id] if resend else []


def resend_confirmation(subscriber: Subscriber) -> list[int]:
    """A new confirmation link for a pending subscriber, at most one a day per mailbox."""
    now = utcnow()
    if subscriber.status != SubscriberStatus.PENDING or recent_confirmation(subscriber, now):
        db.session.rollback()
        return []
    email = schedule_confirmation(subscriber, now, runtime.sequence(), runtime.mail_from())
    db.session.commit()
    return [email.id]

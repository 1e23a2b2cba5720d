"""The signup use case: one transaction writes subscriber, consent and first email."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from . import consent, metrics, runtime
from .clock import utcnow
from .extensions import db
from .models import Subscriber, SubscriberStatus
from .schedule import (
    recent_confirmation,
    resume_drip,
    schedule_confirmation,
    schedule_resend,
    schedule_step,
)
from .sequence import Sequence
from .suppression import lift
from .validation import SignupInput, email_key

log = logging.getLogger(__name__)


def sign_up(data: SignupInput, meta: consent.RequestMeta) -> list[int]:
    """Record the signup and return the ids of emails to send now (after the commit)."""
    if data.honeypot:
        return []
    try:
        subscriber_id, ids = _sign_up(data, meta)
        db.session.commit()
    except IntegrityError:
        # Two signups of one new address at once: the loser finds the winner's row.
        db.session.rollback()
        subscriber_id, ids = _sign_up(data, meta)
        db.session.commit()
    metrics.signed_up()
    log.info("signup of subscriber %s", subscriber_id, extra={"subscriber_id": subscriber_id})
    return ids


def _sign_up(data: SignupInput, meta: consent.RequestMeta) -> tuple[int, list[int]]:
    """The subscriber's id, and the emails to send now."""
    sequence, sender = runtime.sequence(), runtime.mail_from()
    doi = runtime.settings().double_opt_in
    now = utcnow()
    subscriber = db.session.scalar(
        select(Subscriber).where(Subscriber.email_key == email_key(data.email)).with_for_update()
    )
    lift(data.email)  # a fresh consent outweighs an earlier opt-out
    if subscriber is not None:
        return subscriber.id, _again(subscriber, data, meta, now, sequence, sender)
    subscriber = Subscriber(
        email=data.email,
        email_key=email_key(data.email),
        first_name=data.first_name,
        time_zone=data.time_zone,
        status=SubscriberStatus.PENDING if doi else SubscriberStatus.ACTIVE,
        created_at=now,
        updated_at=now,
    )
    db.session.add(subscriber)
    db.session.flush()
    consent.record(subscriber, "consent", sequence.consent, meta, now)
    if doi:
        return subscriber.id, [schedule_confirmation(subscriber, now, sequence, sender).id]
    return subscriber.id, [schedule_step(subscriber, sequence.first, now, sequence, sender).id]


def _again(
    subscriber: Subscriber,
    data: SignupInput,
    meta: consent.RequestMeta,
    now: datetime,
    sequence: Sequence,
    sender: str,
) -> list[int]:
    """A known address signs up again: what goes out now depends on where they stand."""
    consent.record(subscriber, "consent", sequence.consent, meta, now)
    subscriber.first_name = data.first_name or subscriber.first_name
    subscriber.time_zone = data.time_zone or subscriber.time_zone
    if subscriber.status == SubscriberStatus.ACTIVE:
        resend = schedule_resend(subscriber, now, sequence, sender)
        return [resend.id] if resend else []
    if subscriber.status == SubscriberStatus.PENDING:
        return _confirm_again(subscriber, now, sequence, sender)
    # Unsubscribed, bounced or complained: a fresh consent brings them back.
    subscriber.unsubscribed_at = None
    if runtime.settings().double_opt_in:
        subscriber.status = SubscriberStatus.PENDING
        return _confirm_again(subscriber, now, sequence, sender)
    subscriber.status = SubscriberStatus.ACTIVE
    resumed = resume_drip(subscriber, now, sequence, sender)
    if resumed is not None and resumed.step_id == sequence.first.id:
        return [resumed.id]  # they left before the guide went out: that is the guide
    resend = schedule_resend(subscriber, now, sequence, sender)
    return [resend.id] if resend else []


def _confirm_again(
    subscriber: Subscriber, now: datetime, sequence: Sequence, sender: str
) -> list[int]:
    """At most one confirmation email a day, however often the form is sent (list bombing)."""
    if recent_confirmation(subscriber.id, now):
        return []
    return [schedule_confirmation(subscriber, now, sequence, sender).id]

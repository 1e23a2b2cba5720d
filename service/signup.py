"""The signup use case: one transaction writes subscriber, consent and first email."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from . import consent, metrics, runtime
from .addresses import mailbox_key
from .clock import utcnow
from .confirm import reinstate
from .extensions import db
from .models import Subscriber, SubscriberStatus
from .schedule import recent_confirmation, schedule_confirmation, schedule_resend, schedule_step
from .sequence import Sequence
from .suppression import is_suppressed
from .validation import SignupInput, email_key

log = logging.getLogger(__name__)
OPTED_OUT = (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED)


def sign_up(data: SignupInput, meta: consent.RequestMeta, *, proven: bool = False) -> list[int]:
    """Record the signup and return the ids of emails to send now (after the commit).
    `proven`: it came through a link emailed to the address (the resubscribe button)."""
    if data.honeypot:
        return []
    try:
        subscriber_id, ids = _sign_up(data, meta, proven)
        db.session.commit()
    except IntegrityError:
        # Two signups of one new address at once: the loser finds the winner's row.
        db.session.rollback()
        subscriber_id, ids = _sign_up(data, meta, proven)
        db.session.commit()
    metrics.signed_up()
    log.info("signup of subscriber %s", subscriber_id, extra={"subscriber_id": subscriber_id})
    return ids


def _sign_up(data: SignupInput, meta: consent.RequestMeta, proven: bool) -> tuple[int, list[int]]:
    """The subscriber's id, and the emails to send now."""
    sequence, sender = runtime.sequence(), runtime.mail_from()
    now = utcnow()
    subscriber = db.session.scalar(
        select(Subscriber).where(Subscriber.email_key == email_key(data.email)).with_for_update()
    )
    if subscriber is not None:
        return subscriber.id, _again(subscriber, data, meta, now, sequence, sender, proven)
    # A stranger may type any address: one that opted out comes back only by confirming.
    confirm_first = runtime.settings().double_opt_in or _opted_out(data.email)
    subscriber = Subscriber(
        email=data.email,
        email_key=email_key(data.email),
        mailbox_key=mailbox_key(data.email),
        first_name=data.first_name,
        time_zone=data.time_zone,
        status=SubscriberStatus.PENDING if confirm_first else SubscriberStatus.ACTIVE,
        created_at=now,
        updated_at=now,
    )
    db.session.add(subscriber)
    db.session.flush()
    consent.record(subscriber, "consent", sequence.consent, meta, now)
    if confirm_first:
        return subscriber.id, _confirm_again(subscriber, now, sequence, sender)
    return subscriber.id, [schedule_step(subscriber, sequence.first, now, sequence, sender).id]


def _opted_out(address: str) -> bool:
    """Suppressed (unsubscribed, bounced, complained, forgotten), or another spelling of the
    same mailbox is: `ann+1@` is no way around the unsubscribe of `ann@`."""
    siblings = db.session.execute(
        select(Subscriber.email, Subscriber.status).where(
            Subscriber.mailbox_key == mailbox_key(address)
        )
    ).all()
    if any(status in OPTED_OUT for _email, status in siblings):
        return True
    return any(is_suppressed(known) for known in {address, *(email for email, _ in siblings)})


def _again(
    subscriber: Subscriber,
    data: SignupInput,
    meta: consent.RequestMeta,
    now: datetime,
    sequence: Sequence,
    sender: str,
    proven: bool,
) -> list[int]:
    """A known address signs up again: what goes out now depends on where they stand.
    Nobody is renamed here: anyone can type anyone's address."""
    consent.record(subscriber, "consent", sequence.consent, meta, now)
    opted_out = subscriber.status in OPTED_OUT or is_suppressed(subscriber.email)
    if subscriber.status == SubscriberStatus.ACTIVE and not opted_out:
        resend = schedule_resend(subscriber, now, sequence, sender)
        return [resend.id] if resend else []
    if opted_out and proven and not runtime.settings().double_opt_in:
        return reinstate(subscriber, now, sequence, sender)
    # Pending, or coming back after an opt-out: only the confirmation link lets them in.
    subscriber.status = SubscriberStatus.PENDING
    _keep_aside(subscriber, data)
    return _confirm_again(subscriber, now, sequence, sender)


def _keep_aside(subscriber: Subscriber, data: SignupInput) -> None:
    """The name and zone this signup asks for, applied when the confirmation link is followed."""
    if data.first_name:
        changed = data.first_name != subscriber.first_name
        subscriber.requested_first_name = data.first_name if changed else None
    if data.time_zone:
        changed = data.time_zone != subscriber.time_zone
        subscriber.requested_time_zone = data.time_zone if changed else None


def _confirm_again(
    subscriber: Subscriber, now: datetime, sequence: Sequence, sender: str
) -> list[int]:
    """At most one confirmation email a day per mailbox, however often the form is sent
    and however the address is spelt (list bombing)."""
    if recent_confirmation(subscriber, now):
        return []
    return [schedule_confirmation(subscriber, now, sequence, sender).id]

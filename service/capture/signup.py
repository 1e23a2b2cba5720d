"""The signup use case: one transaction writes subscriber, consent and first email."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..core import metrics
from ..core.addresses import email_key, mailbox_key
from ..core.extensions import db
from ..core.models import ConsentAction, Subscriber, SubscriberStatus
from ..core.nudges import queue_nudge
from ..people import consent
from ..sending.context import Context
from ..sending.schedule import (
    recent_confirmation,
    schedule_confirmation,
    schedule_resend,
    schedule_step,
)
from ..sending.suppression import is_suppressed
from .confirm import reinstate
from .validation import SignupInput

log = logging.getLogger(__name__)
OPTED_OUT = (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED)


def sign_up(
    ctx: Context, data: SignupInput, meta: consent.RequestMeta, *, proven: bool = False
) -> list[int]:
    """Record the signup; the emails to send now go to the worker after the commit (their
    ids are returned too). `proven`: it came through a link emailed to the address (the
    resubscribe button)."""
    if data.honeypot:
        return []
    try:
        subscriber_id, ids = _sign_up(ctx, data, meta, proven)
        queue_nudge(ids)
        db.session.commit()
    except IntegrityError:
        # Two signups of one new address at once: the loser finds the winner's row (the
        # rollback dropped what the first try queued).
        db.session.rollback()
        subscriber_id, ids = _sign_up(ctx, data, meta, proven)
        queue_nudge(ids)
        db.session.commit()
    metrics.signed_up()
    log.info("signup of subscriber %s", subscriber_id, extra={"subscriber_id": subscriber_id})
    return ids


def _sign_up(
    ctx: Context, data: SignupInput, meta: consent.RequestMeta, proven: bool
) -> tuple[int, list[int]]:
    """The subscriber's id, and the emails to send now."""
    now = ctx.now()
    subscriber = db.session.scalar(
        select(Subscriber).where(Subscriber.email_key == email_key(data.email)).with_for_update()
    )
    if subscriber is not None:
        return subscriber.id, _again(ctx, subscriber, data, meta, proven)
    # A stranger may type any address: one that opted out comes back only by confirming.
    confirm_first = ctx.settings.double_opt_in or _opted_out(ctx, data.email)
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
    consent.record(subscriber, ConsentAction.CONSENT, ctx.content.consent, meta, now)
    if confirm_first:
        return subscriber.id, _confirm_again(ctx, subscriber)
    return subscriber.id, [schedule_step(ctx, subscriber, ctx.content.first, now).id]


def _opted_out(ctx: Context, address: str) -> bool:
    """Suppressed (unsubscribed, bounced, complained, forgotten), or another spelling of the
    same mailbox is: `ann+1@` is no way around the unsubscribe of `ann@`."""
    siblings = db.session.execute(
        select(Subscriber.email, Subscriber.status).where(
            Subscriber.mailbox_key == mailbox_key(address)
        )
    ).all()
    if any(status in OPTED_OUT for _email, status in siblings):
        return True
    return any(is_suppressed(ctx, known) for known in {address, *(email for email, _ in siblings)})


def _again(
    ctx: Context,
    subscriber: Subscriber,
    data: SignupInput,
    meta: consent.RequestMeta,
    proven: bool,
) -> list[int]:
    """A known address signs up again: what goes out now depends on where they stand.
    Nobody is renamed here: anyone can type anyone's address."""
    consent.record(subscriber, ConsentAction.CONSENT, ctx.content.consent, meta, ctx.now())
    opted_out = subscriber.status in OPTED_OUT or is_suppressed(ctx, subscriber.email)
    if subscriber.status == SubscriberStatus.ACTIVE and not opted_out:
        resend = schedule_resend(ctx, subscriber)
        return [resend.id] if resend else []
    if opted_out and proven and not ctx.settings.double_opt_in:
        return reinstate(ctx, subscriber)
    # Pending, or coming back after an opt-out: only the confirmation link lets them in.
    subscriber.status = SubscriberStatus.PENDING
    _keep_aside(subscriber, data)
    return _confirm_again(ctx, subscriber)


def _keep_aside(subscriber: Subscriber, data: SignupInput) -> None:
    """The name and zone this signup asks for, applied when the confirmation link is followed."""
    if data.first_name:
        changed = data.first_name != subscriber.first_name
        subscriber.requested_first_name = data.first_name if changed else None
    if data.time_zone:
        changed = data.time_zone != subscriber.time_zone
        subscriber.requested_time_zone = data.time_zone if changed else None


def _confirm_again(ctx: Context, subscriber: Subscriber) -> list[int]:
    """At most one confirmation email a day per mailbox, however often the form is sent
    and however the address is spelt (list bombing)."""
    if recent_confirmation(subscriber, ctx.now()):
        return []
    return [schedule_confirmation(ctx, subscriber).id]

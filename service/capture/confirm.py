"""Confirmation: the link emailed to an address proves its owner asked; it starts (or
restarts) the guide and the drip, and applies what a repeat signup asked to change."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from ..content.magnets import default_magnet
from ..core.extensions import db
from ..core.models import (
    ConsentAction,
    Magnet,
    Purpose,
    ScheduledEmail,
    Subscriber,
    SubscriberStatus,
)
from ..core.nudges import queue_nudge
from ..people import consent
from ..people.enrolments import running
from ..sending.context import Context
from ..sending.schedule import (
    recent_confirmation,
    resume_drip,
    schedule_confirmation,
    schedule_resend,
)
from ..sending.suppression import lift

CONFIRM_MAX_AGE = timedelta(hours=72)


def confirm(
    ctx: Context, subscriber_id: int, meta: consent.RequestMeta
) -> tuple[Subscriber | None, list[int]]:
    """Confirm a pending subscriber; return it and the ids of the emails it sends now (the
    worker is nudged for them after the commit)."""
    subscriber = db.session.get(Subscriber, subscriber_id, with_for_update=True)
    if subscriber is None or subscriber.status != SubscriberStatus.PENDING:
        db.session.rollback()
        return subscriber, []
    now = ctx.now()
    subscriber.confirmed_at = now
    subscriber.first_name = subscriber.requested_first_name or subscriber.first_name
    subscriber.time_zone = subscriber.requested_time_zone or subscriber.time_zone
    subscriber.requested_first_name = subscriber.requested_time_zone = None
    magnet = confirmed_magnet(subscriber)
    consent.record(
        subscriber,
        ConsentAction.CONFIRMATION,
        ctx.for_magnet(magnet.id).content.consent,
        meta,
        now,
        magnet.id,
    )
    ids = reinstate(ctx, subscriber, magnet)
    queue_nudge(ids)
    db.session.commit()
    return subscriber, ids


def confirmed_magnet(subscriber: Subscriber) -> Magnet:
    """The magnet the last confirmation email was sent for (the default for rows older
    than magnets)."""
    magnet_id = db.session.scalar(
        select(ScheduledEmail.magnet_id)
        .where(
            ScheduledEmail.subscriber_id == subscriber.id,
            ScheduledEmail.purpose == Purpose.CONFIRM,
        )
        .order_by(ScheduledEmail.id.desc())
        .limit(1)
    )
    found = db.session.get(Magnet, magnet_id) if magnet_id else None
    return found or default_magnet()


def reinstate(ctx: Context, subscriber: Subscriber, magnet: Magnet) -> list[int]:
    """Active, unsuppressed, each running magnet's sequence resumed where it stopped, and
    `magnet`'s guide (again, at most once a day): the emails to send now. Only for someone
    who proved they own the address."""
    subscriber.status = SubscriberStatus.ACTIVE
    subscriber.unsubscribed_at = None
    lift(ctx, subscriber.email)
    ids: list[int] = []
    magnets = {m.id: m for m in running(subscriber)} or {magnet.id: magnet}
    for each in magnets.values():
        mctx = ctx.for_magnet(each.id)
        resumed = resume_drip(mctx, subscriber)
        if resumed is not None and resumed.step_id == mctx.content.first.id:
            ids.append(resumed.id)  # its guide never went out: this is it
        elif each.id == magnet.id:
            resend = schedule_resend(mctx, subscriber)
            ids += [resend.id] if resend else []
    return ids


def resend_confirmation(ctx: Context, subscriber: Subscriber) -> list[int]:
    """A new confirmation link for a pending subscriber, at most one a day per mailbox."""
    if subscriber.status != SubscriberStatus.PENDING or recent_confirmation(subscriber, ctx.now()):
        db.session.rollback()
        return []
    email = schedule_confirmation(ctx.for_magnet(confirmed_magnet(subscriber).id), subscriber)
    queue_nudge([email.id])
    db.session.commit()
    return [email.id]

"""Confirmation: the link emailed to an address proves its owner asked; it starts (or
restarts) the guide and the drip, and applies what a repeat signup asked to change."""

from __future__ import annotations

from datetime import timedelta

from ..core.extensions import db
from ..core.models import ConsentAction, Subscriber, SubscriberStatus
from ..core.nudges import queue_nudge
from ..people import consent
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
    consent.record(subscriber, ConsentAction.CONFIRMATION, ctx.content.consent, meta, now)
    ids = reinstate(ctx, subscriber)
    queue_nudge(ids)
    db.session.commit()
    return subscriber, ids


def reinstate(ctx: Context, subscriber: Subscriber) -> list[int]:
    """Active, unsuppressed, the drip resumed where it stopped, and the guide (again, at most
    once a day): the emails to send now. Only for someone who proved they own the address."""
    subscriber.status = SubscriberStatus.ACTIVE
    subscriber.unsubscribed_at = None
    lift(ctx, subscriber.email)
    resumed = resume_drip(ctx, subscriber)
    if resumed is not None and resumed.step_id == ctx.content.first.id:
        return [resumed.id]  # the guide never went out: this is it
    resend = schedule_resend(ctx, subscriber)
    return [resend.id] if resend else []


def resend_confirmation(ctx: Context, subscriber: Subscriber) -> list[int]:
    """A new confirmation link for a pending subscriber, at most one a day per mailbox."""
    if subscriber.status != SubscriberStatus.PENDING or recent_confirmation(subscriber, ctx.now()):
        db.session.rollback()
        return []
    email = schedule_confirmation(ctx, subscriber)
    queue_nudge([email.id])
    db.session.commit()
    return [email.id]

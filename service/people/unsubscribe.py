"""Unsubscribing: flip the state, record the withdrawal, cancel what is scheduled, at once."""

from __future__ import annotations

import logging

from sqlalchemy import select

from ..core import metrics
from ..core.extensions import db
from ..core.models import (
    ConsentAction,
    EmailStatus,
    ScheduledEmail,
    Subscriber,
    SubscriberStatus,
    SuppressionReason,
)
from ..sending.context import Context
from ..sending.schedule import cancel_open
from ..sending.suppression import suppress
from . import consent

log = logging.getLogger(__name__)


def unsubscribe(ctx: Context, subscriber_id: int, meta: consent.RequestMeta) -> Subscriber | None:
    """Idempotent: a second call changes nothing and records nothing."""
    subscriber = db.session.get(Subscriber, subscriber_id, with_for_update=True)
    if subscriber is None:
        return None
    if subscriber.status == SubscriberStatus.UNSUBSCRIBED:
        db.session.commit()
        return subscriber
    now = ctx.now()
    subscriber.status = SubscriberStatus.UNSUBSCRIBED
    subscriber.unsubscribed_at = now
    consent.record(subscriber, ConsentAction.WITHDRAWAL, ctx.content.consent, meta, now)
    cancel_open(subscriber.id)
    suppress(ctx, subscriber.email, SuppressionReason.UNSUBSCRIBED)
    step = last_step_sent(subscriber.id)
    db.session.commit()
    metrics.unsubscribed(step)
    log.info(
        "subscriber %s unsubscribed after step %s",
        subscriber_id,
        step or metrics.NO_STEP,
        extra={"subscriber_id": subscriber_id, "step": step or metrics.NO_STEP},
    )
    return subscriber


def last_step_sent(subscriber_id: int) -> str | None:
    """The step of the last email that left for this subscriber (None: none has yet)."""
    return db.session.scalar(
        select(ScheduledEmail.step_id)
        .where(
            ScheduledEmail.subscriber_id == subscriber_id,
            ScheduledEmail.status == EmailStatus.SENT,
        )
        .order_by(ScheduledEmail.sent_at.desc(), ScheduledEmail.id.desc())
        .limit(1)
    )

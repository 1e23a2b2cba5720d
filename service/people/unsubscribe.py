"""Unsubscribing: flip the state, record the withdrawal, cancel what is scheduled, at once."""

from __future__ import annotations

import logging

from sqlalchemy import select

from ..core import metrics
from ..core.extensions import db
from ..core.models import (
    ConsentAction,
    EmailStatus,
    Magnet,
    ScheduledEmail,
    Subscriber,
    SubscriberStatus,
    SuppressionReason,
)
from ..sending.context import Context
from ..sending.enrolment_stops import stop_enrolments
from ..sending.schedule import cancel_open
from ..sending.suppression import suppress
from . import consent
from .enrolments import ONLY_THIS, UNSUBSCRIBED, stop

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
    stop_enrolments(subscriber.id, UNSUBSCRIBED, now)
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


def leave_magnet(
    ctx: Context, subscriber_id: int, magnet_id: int, meta: consent.RequestMeta
) -> tuple[Subscriber, Magnet] | None:
    """ "Only stop emails about this magnet": its sequence stops (its open emails cancelled)
    and a withdrawal is recorded for it; the other magnets' sequences go on. Idempotent."""
    subscriber = db.session.get(Subscriber, subscriber_id, with_for_update=True)
    magnet = db.session.get(Magnet, magnet_id)
    if subscriber is None or magnet is None:
        db.session.rollback()
        return None
    if stop(ctx, subscriber, magnet, ONLY_THIS):
        consent.record(
            subscriber,
            ConsentAction.WITHDRAWAL,
            ctx.for_magnet(magnet.id).content.consent,
            meta,
            ctx.now(),
            magnet.id,
        )
        log.info(
            "subscriber %s stopped the emails of magnet %s",
            subscriber_id,
            magnet.slug,
            extra={"subscriber_id": subscriber_id},
        )
    db.session.commit()
    return subscriber, magnet


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

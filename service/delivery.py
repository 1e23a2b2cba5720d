"""Sending one scheduled email: claim, re-check, render, send, record, schedule the next."""

from __future__ import annotations

import logging
import random
import time
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.exc import OperationalError

from . import metrics, runtime
from .clock import utcnow
from .emails import compose, render_for
from .extensions import db
from .logs import mask_addresses
from .models import (
    DeliveryAttempt,
    EmailStatus,
    Purpose,
    ScheduledEmail,
    Subscriber,
    SubscriberStatus,
    Suppression,
)
from .schedule import cancel_open, schedule_next
from .suppression import address_hashes, suppress
from .transport import DeliveryError, SendResult

log = logging.getLogger(__name__)
RETRY_FOR = timedelta(days=2)
BACKOFF_BASE = 60  # seconds before the first retry; doubles each attempt
BACKOFF_CAP = 6 * 3600
# Recording a send the server accepted: a send left unrecorded goes again once its lease
# runs out, so keep trying (the database comes back, or the process dies) for this long.
RECORD_FOR = 600  # seconds
RECORD_PAUSE = 0.5  # seconds before the second try, doubling up to RECORD_PAUSE_MAX
RECORD_PAUSE_MAX = 1.0


def claim(email_id: int, now: datetime, lease: float) -> bool:
    """Take the row for this worker: a conditional UPDATE, so only one claimant wins."""
    result = db.session.execute(
        update(ScheduledEmail)
        .where(
            ScheduledEmail.id == email_id,
            or_(
                and_(ScheduledEmail.status == EmailStatus.PENDING, ScheduledEmail.due_at <= now),
                and_(
                    ScheduledEmail.status == EmailStatus.SENDING, ScheduledEmail.lease_until < now
                ),
            ),
        )
        .values(
            status=EmailStatus.SENDING,
            lease_until=now + timedelta(seconds=lease),
            attempts=ScheduledEmail.attempts + 1,
            # The hand-off is consumed: from here the claim's lease (or a retry's due time)
            # decides when a pass may hand the row again.
            queued_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    # A durable commit: the SMTP send follows at once, and a claim lost in a database crash
    # after it was acknowledged would let another worker send the same email meanwhile.
    db.session.commit()
    return result.rowcount == 1


def _wanted_status(email: ScheduledEmail) -> str:
    return SubscriberStatus.PENDING if email.purpose == Purpose.CONFIRM else SubscriberStatus.ACTIVE


def _load(email_id: int) -> tuple[ScheduledEmail | None, Subscriber | None]:
    row = db.session.execute(
        select(ScheduledEmail, Subscriber)
        .join(Subscriber, Subscriber.id == ScheduledEmail.subscriber_id)
        .where(ScheduledEmail.id == email_id)
    ).first()
    return (row[0], row[1]) if row else (None, None)


def still_wanted(email: ScheduledEmail, subscriber: Subscriber) -> bool:
    """One fresh read just before SMTP: still claimed by us, subscriber still in, the
    address not suppressed (an unsubscribe or a webhook since the claim wins). A
    confirmation goes to a suppressed address: it is the one way back after an opt-out."""
    suppressed = exists().where(Suppression.email_hash.in_(address_hashes(subscriber.email)))
    row = db.session.execute(
        select(ScheduledEmail.status, Subscriber.status, suppressed)
        .join(Subscriber, Subscriber.id == ScheduledEmail.subscriber_id)
        .where(ScheduledEmail.id == email.id)
    ).first()
    return (
        row is not None
        and row[0] == EmailStatus.SENDING
        and row[1] == _wanted_status(email)
        and (not row[2] or email.purpose == Purpose.CONFIRM)
    )


def deliver(email_id: int) -> str:
    """Deliver one scheduled email if it is due and still wanted; return what happened."""
    app = current_app._get_current_object()
    now = utcnow()
    if not claim(email_id, now, runtime.settings(app).send_lease):
        return "not-claimed"
    email, subscriber = _load(email_id)
    if email is None or subscriber.status != _wanted_status(email):
        return _finish(email, EmailStatus.CANCELLED, "cancelled")
    rendered = render_for(app, email, subscriber)
    if rendered is None:  # its step was removed from the sequence: move on to the next
        schedule_next(subscriber, email.step_id, now, runtime.sequence(app), runtime.mail_from(app))
        return _finish(email, EmailStatus.CANCELLED, "skipped")
    msg, sender, recipient = compose(app, email, subscriber, rendered, now)
    if not still_wanted(email, subscriber):
        return _finish(email, EmailStatus.CANCELLED, "cancelled")
    # Read now what recording the send needs: after this commit the objects are expired, and
    # reloading them once the server has the message could fail on a lost connection.
    about = _about(email)
    db.session.commit()  # no transaction held open across the network call
    try:
        result = runtime.transport(app).send(msg, sender, recipient)
    except DeliveryError as exc:
        return _failed(email, subscriber, exc)
    return _sent(about, result)


def _finish(email: ScheduledEmail | None, status: str, outcome: str) -> str:
    if email is not None:
        email.status = status
        email.lease_until = None
    db.session.commit()
    return outcome


def _about(email: ScheduledEmail) -> dict[str, object]:
    """The ids a log line about this email carries (logs.FIELDS), never the address."""
    return {
        "subscriber_id": email.subscriber_id,
        "email_id": email.id,
        "step": email.step_id,
        "message_id": email.message_id,
    }


def _log(email: ScheduledEmail, outcome: str, code: int | None, reply: str, now: datetime) -> None:
    db.session.add(
        DeliveryAttempt(
            email_id=email.id,
            message_id=email.message_id,
            outcome=outcome,
            smtp_code=code,
            smtp_reply=reply[:2000],
            created_at=now,
        )
    )


def _sent(about: dict[str, object], result: SendResult) -> str:
    """Record an accepted send. The server has the message now: if the database connection
    drops or the database is unreachable, keep trying on fresh connections rather than
    leave the row to be sent again when its lease runs out."""
    give_up = time.monotonic() + RECORD_FOR
    pause = RECORD_PAUSE
    while True:
        try:
            return _record_sent(about, result)
        except OperationalError as exc:
            db.session.rollback()
            if time.monotonic() + pause > give_up:
                raise
            reason = str(exc.orig or exc).strip().splitlines()[0]
            log.warning(
                "could not record email %s as sent (%s); trying again in %.1fs",
                about["email_id"],
                reason,
                pause,
                extra=about,
            )
            time.sleep(pause)
            pause = min(pause * 2, RECORD_PAUSE_MAX)


def _record_sent(about: dict[str, object], result: SendResult) -> str:
    app = current_app._get_current_object()
    now = utcnow()
    email = db.session.get(ScheduledEmail, about["email_id"])
    if email.status != EmailStatus.SENT:  # else an earlier try's commit landed, its answer lost
        subscriber = db.session.get(Subscriber, about["subscriber_id"])
        email.status = EmailStatus.SENT
        email.sent_at = now
        email.lease_until = None
        email.last_error = None
        _log(email, "sent", result.code, result.reply, now)
        if email.purpose == Purpose.DRIP:
            sequence, sender = runtime.sequence(app), runtime.mail_from(app)
            schedule_next(subscriber, email.step_id, now, sequence, sender)
    db.session.commit()
    metrics.email_sent(about["step"])
    log.info("sent email %s (step %s)", about["email_id"], about["step"], extra=about)
    return "sent"


def _first_try(email: ScheduledEmail, now: datetime) -> datetime:
    """When this email was first tried since it was scheduled: the retry window runs from
    there (a follow-up's row is written when the step before it goes, days ahead)."""
    first = db.session.scalar(
        select(func.min(DeliveryAttempt.created_at)).where(
            DeliveryAttempt.email_id == email.id, DeliveryAttempt.created_at >= email.anchor_at
        )
    )
    return first or now


def _failed(email: ScheduledEmail, subscriber: Subscriber, exc: DeliveryError) -> str:
    now = utcnow()
    email.lease_until = None
    email.last_error = str(exc)[:2000]
    # SMTP replies often quote the recipient: the log gets the reply with the address masked.
    reply = mask_addresses(str(exc))
    if exc.kind == DeliveryError.TRANSIENT and now - _first_try(email, now) < RETRY_FOR:
        _log(email, "deferred", exc.code, exc.reply, now)
        email.status = EmailStatus.PENDING
        email.due_at = now + backoff(email.attempts)
        db.session.commit()
        metrics.send_failed("deferred")
        log.warning(
            "deferred email %s (attempt %s): %s",
            email.id,
            email.attempts,
            reply,
            extra=_about(email),
        )
        return "deferred"
    email.status = EmailStatus.FAILED
    if exc.kind == DeliveryError.BOUNCE:
        _log(email, "bounced", exc.code, exc.reply, now)
        subscriber.status = SubscriberStatus.BOUNCED
        cancel_open(subscriber.id)
        suppress(subscriber.email, "bounced")
        db.session.commit()
        metrics.send_failed("bounced")
        log.warning(
            "bounced email %s, subscriber %s suppressed: %s",
            email.id,
            subscriber.id,
            reply,
            extra=_about(email),
        )
        return "bounced"
    _log(email, "failed", exc.code, exc.reply, now)
    db.session.commit()
    metrics.send_failed("failed")
    log.error(
        "email %s failed, the server refused the sender or message: %s",
        email.id,
        reply,
        extra=_about(email),
    )
    return "failed"


def backoff(attempts: int) -> timedelta:
    """Exponential, capped, with jitter so a recovered server is not hit all at once."""
    seconds = min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_CAP)
    return timedelta(seconds=seconds * random.uniform(0.8, 1.2))

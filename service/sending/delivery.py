"""Sending one scheduled email: claim, re-check, render, send, record, schedule the next."""

from __future__ import annotations

import logging
import random
import time
from datetime import datetime, timedelta
from typing import TypedDict

from jinja2 import TemplateError
from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.exc import OperationalError

from ..content.published import NoContent
from ..core import metrics
from ..core.extensions import db, rowcount
from ..core.logs import mask_addresses
from ..core.models import (
    DeliveryAttempt,
    EmailStatus,
    Outcome,
    Purpose,
    ScheduledEmail,
    Subscriber,
    SubscriberStatus,
    Suppression,
    SuppressionReason,
)
from .compose import compose, render_for
from .context import Context
from .schedule import cancel_open, schedule_next
from .spacing import held_until, hold
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
    return rowcount(result) == 1


def _wanted_status(email: ScheduledEmail) -> SubscriberStatus:
    return SubscriberStatus.PENDING if email.purpose == Purpose.CONFIRM else SubscriberStatus.ACTIVE


def _load(email_id: int) -> tuple[ScheduledEmail, Subscriber] | None:
    row = db.session.execute(
        select(ScheduledEmail, Subscriber)
        .join(Subscriber, Subscriber.id == ScheduledEmail.subscriber_id)
        .where(ScheduledEmail.id == email_id)
    ).first()
    return (row[0], row[1]) if row else None


def still_wanted(ctx: Context, email: ScheduledEmail, subscriber: Subscriber) -> bool:
    """One fresh read just before SMTP: still claimed by us, subscriber still in, the
    address not suppressed (an unsubscribe or a webhook since the claim wins). A
    confirmation goes to a suppressed address: it is the one way back after an opt-out."""
    hashes = address_hashes(ctx, subscriber.email)
    suppressed = exists().where(Suppression.email_hash.in_(hashes))
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


def deliver(ctx: Context, email_id: int) -> Outcome:
    """Deliver one scheduled email if it is due and still wanted; return what happened.
    Rendered and followed by its next step from one content snapshot, the context's."""
    now = ctx.now()
    if not claim(email_id, now, ctx.settings.send_lease):
        return Outcome.NOT_CLAIMED
    loaded = _load(email_id)
    if loaded is None:  # erased since the claim
        return _finish(None, EmailStatus.CANCELLED, Outcome.CANCELLED)
    email, subscriber = loaded
    if subscriber.status != _wanted_status(email):
        return _finish(email, EmailStatus.CANCELLED, Outcome.CANCELLED)
    try:
        ctx = ctx.for_magnet(email.magnet_id)  # its own magnet's content, one snapshot
        until = held_until(ctx, email)  # EMAIL_MIN_GAP: another magnet's email just left
        if until is not None:
            return _spaced(email, until)
        rendered = render_for(ctx, email, subscriber)
    except (TemplateError, NoContent) as exc:  # the sandbox's SecurityError among them
        return _unrenderable(email, exc)
    if rendered is None:  # its step was removed from the sequence: move on to the next
        schedule_next(ctx, subscriber, email.step_id, now)
        return _finish(email, EmailStatus.CANCELLED, Outcome.SKIPPED)
    msg, sender, recipient = compose(ctx, email, subscriber, rendered)
    if not still_wanted(ctx, email, subscriber):
        return _finish(email, EmailStatus.CANCELLED, Outcome.CANCELLED)
    # Read now what recording the send needs: after this commit the objects are expired, and
    # reloading them once the server has the message could fail on a lost connection.
    about = _about(email)
    db.session.commit()  # no transaction held open across the network call
    try:
        result = ctx.transport.send(msg, sender, recipient, step=email.step_id)
    except DeliveryError as exc:
        return _failed(ctx, email, subscriber, exc)
    return _sent(ctx, about, result)


def _spaced(email: ScheduledEmail, until: datetime) -> Outcome:
    """EMAIL_MIN_GAP: give the claim back, due again at `until`, no attempt counted."""
    hold(email, until)
    db.session.commit()
    return Outcome.SPACED


def _unrenderable(email: ScheduledEmail, exc: Exception) -> Outcome:
    """A template that cannot render (or a magnet without content) fails that email, not
    the worker: it would fail the same way on every try."""
    email.last_error = f"cannot render: {type(exc).__name__}: {exc}"[:2000]
    log.error("email %s cannot be rendered: %s", email.id, email.last_error, extra=_about(email))
    metrics.send_failed(Outcome.FAILED)
    return _finish(email, EmailStatus.FAILED, Outcome.FAILED)


def _finish(email: ScheduledEmail | None, status: EmailStatus, outcome: Outcome) -> Outcome:
    if email is not None:
        email.status = status
        email.lease_until = None
    db.session.commit()
    return outcome


class About(TypedDict):
    """The ids a log line about one email carries (logs.FIELDS), never the address."""

    subscriber_id: int
    email_id: int
    step: str
    message_id: str


def _about(email: ScheduledEmail) -> About:
    return {
        "subscriber_id": email.subscriber_id,
        "email_id": email.id,
        "step": email.step_id,
        "message_id": email.message_id,
    }


def _log(
    email: ScheduledEmail, outcome: Outcome, code: int | None, reply: str, now: datetime
) -> None:
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


def _sent(ctx: Context, about: About, result: SendResult) -> Outcome:
    """Record an accepted send. The server has the message now: if the database connection
    drops or the database is unreachable, keep trying on fresh connections rather than
    leave the row to be sent again when its lease runs out."""
    give_up = time.monotonic() + RECORD_FOR
    pause = RECORD_PAUSE
    while True:
        try:
            return _record_sent(ctx, about, result)
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


def _record_sent(ctx: Context, about: About, result: SendResult) -> Outcome:
    now = ctx.now()
    email = db.session.get_one(ScheduledEmail, about["email_id"])  # we hold its claim
    if email.status != EmailStatus.SENT:  # else an earlier try's commit landed, its answer lost
        subscriber = db.session.get_one(Subscriber, about["subscriber_id"])
        email.status = EmailStatus.SENT
        email.sent_at = now
        email.lease_until = None
        email.last_error = None
        _log(email, Outcome.SENT, result.code, result.reply, now)
        if email.purpose == Purpose.DRIP:
            schedule_next(ctx, subscriber, email.step_id, now)
    db.session.commit()
    metrics.email_sent(about["step"])
    log.info("sent email %s (step %s)", about["email_id"], about["step"], extra=about)
    return Outcome.SENT


def _first_try(email: ScheduledEmail, now: datetime) -> datetime:
    """When this email was first tried since it was scheduled: the retry window runs from
    there (a follow-up's row is written when the step before it goes, days ahead)."""
    first = db.session.scalar(
        select(func.min(DeliveryAttempt.created_at)).where(
            DeliveryAttempt.email_id == email.id, DeliveryAttempt.created_at >= email.anchor_at
        )
    )
    return first or now


def _failed(
    ctx: Context, email: ScheduledEmail, subscriber: Subscriber, exc: DeliveryError
) -> Outcome:
    now = ctx.now()
    email.lease_until = None
    email.last_error = str(exc)[:2000]
    # SMTP replies often quote the recipient: the log gets the reply with the address masked.
    reply = mask_addresses(str(exc))
    if exc.kind == DeliveryError.TRANSIENT and now - _first_try(email, now) < RETRY_FOR:
        _log(email, Outcome.DEFERRED, exc.code, exc.reply, now)
        email.status = EmailStatus.PENDING
        email.due_at = now + backoff(email.attempts)
        db.session.commit()
        metrics.send_failed(Outcome.DEFERRED)
        log.warning(
            "deferred email %s (attempt %s): %s",
            email.id,
            email.attempts,
            reply,
            extra=_about(email),
        )
        return Outcome.DEFERRED
    email.status = EmailStatus.FAILED
    if exc.kind == DeliveryError.BOUNCE:
        _log(email, Outcome.BOUNCED, exc.code, exc.reply, now)
        subscriber.status = SubscriberStatus.BOUNCED
        cancel_open(subscriber.id)
        suppress(ctx, subscriber.email, SuppressionReason.BOUNCED)
        db.session.commit()
        metrics.send_failed(Outcome.BOUNCED)
        log.warning(
            "bounced email %s, subscriber %s suppressed: %s",
            email.id,
            subscriber.id,
            reply,
            extra=_about(email),
        )
        return Outcome.BOUNCED
    _log(email, Outcome.FAILED, exc.code, exc.reply, now)
    db.session.commit()
    metrics.send_failed(Outcome.FAILED)
    log.error(
        "email %s failed, the server refused the sender or message: %s",
        email.id,
        reply,
        extra=_about(email),
    )
    return Outcome.FAILED


def backoff(attempts: int) -> timedelta:
    """Exponential, capped, with jitter so a recovered server is not hit all at once."""
    seconds = min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_CAP)
    return timedelta(seconds=seconds * random.uniform(0.8, 1.2))

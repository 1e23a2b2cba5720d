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
from ..content.rendering import RenderedEmail
from ..core import metrics
from ..core.extensions import db, rowcount
from ..core.logs import mask_addresses
from ..core.models import (
    Broadcast,
    BroadcastStatus,
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
from . import send_rate, throttling
from .broadcasts import stop_if_refused
from .compose import compose, render_broadcast_for, render_for
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
CLAIM_RAN_OUT = "claim ran out"  # a batch-claimed row left too long: not ours to send now


def claim(email_id: int, now: datetime, lease: float) -> bool:
    """Take the row for this worker: a conditional UPDATE, so only one claimant wins, and a
    broadcast's row only while the broadcast is sending (a pause stops the next claim)."""
    sending = select(Broadcast.id).where(Broadcast.status == BroadcastStatus.SENDING)
    result = db.session.execute(
        update(ScheduledEmail)
        .where(
            ScheduledEmail.id == email_id,
            or_(ScheduledEmail.broadcast_id.is_(None), ScheduledEmail.broadcast_id.in_(sending)),
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
    """The email and its subscriber in one query (and its broadcast, if any, into the
    session: rendering and pacing read it from there)."""
    row = db.session.execute(
        select(ScheduledEmail, Subscriber, Broadcast)
        .join(Subscriber, Subscriber.id == ScheduledEmail.subscriber_id)
        .outerjoin(Broadcast, Broadcast.id == ScheduledEmail.broadcast_id)
        .where(ScheduledEmail.id == email_id)
    ).first()
    return (row[0], row[1]) if row else None


def still_wanted(ctx: Context, email: ScheduledEmail, subscriber: Subscriber) -> bool:
    """One fresh read just before SMTP: still claimed by us, subscriber still in, the
    address not suppressed (an unsubscribe or a webhook since the claim wins). A
    confirmation goes to a suppressed address: it is the one way back after an opt-out."""
    return why_unwanted(ctx, email, subscriber) is None


def why_unwanted(
    ctx: Context, email: ScheduledEmail, subscriber: Subscriber, held: datetime | None = None
) -> str | None:
    """still_wanted's read, saying why not (a broadcast row keeps it as its outcome). With
    `held`, the lease of a batch claim: the row must still carry it, with half of it left,
    or another worker may have claimed it since it ran out."""
    hashes = address_hashes(ctx, subscriber.email)
    suppressed = exists().where(Suppression.email_hash.in_(hashes))
    row = db.session.execute(
        select(ScheduledEmail.status, Subscriber.status, suppressed, ScheduledEmail.lease_until)
        .join(Subscriber, Subscriber.id == ScheduledEmail.subscriber_id)
        .where(ScheduledEmail.id == email.id)
    ).first()
    if row is None:
        return "erased"
    if row[0] != EmailStatus.SENDING:
        return f"no longer claimed ({row[0]})"
    if held is not None and (
        row[3] != held or held - ctx.now() < timedelta(seconds=ctx.settings.send_lease / 2)
    ):
        return CLAIM_RAN_OUT
    if row[1] != _wanted_status(email):
        return f"subscriber {row[1]}"
    if row[2] and email.purpose != Purpose.CONFIRM:
        return "address suppressed"
    return None


def deliver(ctx: Context, email_id: int) -> Outcome:
    """Deliver one scheduled email if it is due and still wanted; return what happened.
    Rendered and followed by its next step from one content snapshot, the context's."""
    now = ctx.now()
    if not claim(email_id, now, ctx.settings.send_lease):
        return Outcome.NOT_CLAIMED
    return deliver_claimed(ctx, email_id, now)


def deliver_claimed(
    ctx: Context, email_id: int, now: datetime, held: datetime | None = None
) -> Outcome:
    """deliver() after the claim: for a row this worker claimed alone, or in a batch with
    the lease `held` (then sent only while that claim is still ours, see why_unwanted)."""
    loaded = _load(email_id)
    if loaded is None:  # erased since the claim
        return _finish(None, EmailStatus.CANCELLED, Outcome.CANCELLED)
    email, subscriber = loaded
    if subscriber.status != _wanted_status(email):
        why = f"subscriber {subscriber.status}"
        return _finish(email, EmailStatus.CANCELLED, Outcome.CANCELLED, why)
    rendered: RenderedEmail | None
    try:
        ctx = ctx.for_magnet(email.magnet_id)  # its own magnet's content, one snapshot
        until = held_until(ctx, email)  # EMAIL_MIN_GAP: another magnet's email just left
        if until is not None:
            return _spaced(email, until)
        if email.broadcast_id is not None:
            rendered = render_broadcast_for(ctx, email, subscriber)
        else:
            rendered = render_for(ctx, email, subscriber)
    except (TemplateError, NoContent) as exc:  # the sandbox's SecurityError among them
        return _unrenderable(email, exc)
    if rendered is None:  # its step was removed from the sequence: move on to the next
        schedule_next(ctx, subscriber, email.step_id, now)
        return _finish(email, EmailStatus.CANCELLED, Outcome.SKIPPED)
    msg, sender, recipient = compose(ctx, email, subscriber, rendered)
    _wait_for_turn(ctx, email)
    unwanted = why_unwanted(ctx, email, subscriber, held)
    if unwanted == CLAIM_RAN_OUT:
        db.session.rollback()  # the row stays as it is: its lease brings it back
        return Outcome.NOT_CLAIMED
    if unwanted is not None:
        return _finish(email, EmailStatus.CANCELLED, Outcome.CANCELLED, unwanted)
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


def _finish(
    email: ScheduledEmail | None, status: EmailStatus, outcome: Outcome, why: str | None = None
) -> Outcome:
    if email is not None:
        email.status = status
        email.lease_until = None
        if why is not None:
            email.last_error = why  # a skipped row says why it was skipped
    db.session.commit()
    return outcome


def _wait_for_turn(ctx: Context, email: ScheduledEmail) -> None:
    """Pace the send: SEND_RATE for every email, a broadcast's own (or throttled) rate for
    its rows. No transaction stays open while waiting."""
    limits: dict[str, float] = {}
    if ctx.settings.send_rate is not None:
        limits[send_rate.ALL_MAIL] = ctx.settings.send_rate
    if email.broadcast_id is not None:
        broadcast = db.session.get_one(Broadcast, email.broadcast_id)
        own = throttling.current_rate(broadcast, None)
        if own is not None:
            limits[f"broadcast:{email.broadcast_id}"] = own
    if limits:
        db.session.commit()
        send_rate.wait_for_turn(send_rate.bucket_for(ctx.settings.redis_url), limits)


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
        email.status = EmailStatus.SENT
        email.sent_at = now
        email.lease_until = None
        email.last_error = None
        _log(email, Outcome.SENT, result.code, result.reply, now)
        if email.purpose == Purpose.DRIP:
            subscriber = db.session.get_one(Subscriber, about["subscriber_id"])
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
    throttled = email.broadcast_id is not None and throttling.is_throttling(exc)
    if exc.kind == DeliveryError.TRANSIENT and now - _first_try(email, now) < RETRY_FOR:
        _log(email, Outcome.DEFERRED, exc.code, exc.reply, now)
        email.status = EmailStatus.PENDING
        email.due_at = now + backoff(email.attempts)
        if throttled and email.broadcast_id is not None:
            # The server asks the whole send to slow down: this email waits a moment, not
            # an exponential backoff, and every worker's pace for the broadcast halves.
            throttling.slow_down(email.broadcast_id, ctx.settings.send_rate, now)
            email.due_at = now + throttling.PAUSE
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
    if email.broadcast_id is not None:
        db.session.flush()
        stop_if_refused(email.broadcast_id, reply)
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

"""Applying normalized events: record each once, then stop mail to whoever bounced or complained."""

from __future__ import annotations

import logging
import re
from email.utils import parseaddr

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..core import metrics
from ..core.addresses import email_key, normalized
from ..core.extensions import db
from ..core.models import (
    ConsentAction,
    ConsentRecord,
    EventKind,
    ScheduledEmail,
    Subscriber,
    SubscriberStatus,
    SuppressionReason,
    WebhookEvent,
)
from ..sending.context import Context
from ..sending.enrolment_stops import stop_enrolments
from ..sending.schedule import cancel_open
from ..sending.suppression import address_hash, suppress
from .normalized import Event, Forbidden

log = logging.getLogger(__name__)
SOFT_BOUNCE_LIMIT = 5  # soft bounces since the last consent that suppress an address
MAX_DETAIL = 2000
STOPPING = (EventKind.HARD_BOUNCE, EventKind.SOFT_BOUNCE, EventKind.COMPLAINT)


def apply(ctx: Context, events: list[Event]) -> int:
    """Record and act on each event not seen before; return how many were new.

    Each event is its own transaction: the insert comes first, and the unique key on
    (provider, event_id) turns a replay into an IntegrityError that changes nothing."""
    _refuse_reused_nonces(events)
    return sum(_apply_one(ctx, event) for event in events)


def _refuse_reused_nonces(events: list[Event]) -> None:
    for event in events:
        if event.nonce is None:
            continue
        owner = db.session.scalar(
            select(WebhookEvent.event_id).where(
                WebhookEvent.provider == event.provider, WebhookEvent.nonce == event.nonce
            )
        )
        # The same event again is a harmless retry (deduplicated below); another event
        # under a used token is a forged replay.
        if owner is not None and owner != event.event_id:
            db.session.rollback()
            raise Forbidden("this signature token was used before")
    db.session.rollback()


def _apply_one(ctx: Context, event: Event) -> bool:
    now = ctx.now()
    address = _address(event.email)
    row = WebhookEvent(
        provider=event.provider,
        event_id=event.event_id,
        kind=event.kind,
        email_hash=address_hash(address, ctx.settings.secret_keys[0]),
        occurred_at=event.occurred_at,
        received_at=now,
        detail=_scrub(event.detail, event.email, address),
        nonce=event.nonce,
    )
    db.session.add(row)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        log.info("%s event %s seen before: nothing changes", event.provider, event.event_id)
        return False
    _act(ctx, event, address, row)
    db.session.commit()
    _count(event)
    return True


def _count(event: Event) -> None:
    """Counted once the event is recorded: a replay is not a second bounce."""
    if event.kind in (EventKind.HARD_BOUNCE, EventKind.SOFT_BOUNCE):
        metrics.bounce_reported()
    elif event.kind == EventKind.COMPLAINT:
        metrics.complaint_reported()


def _act(ctx: Context, event: Event, address: str, row: WebhookEvent) -> None:
    if event.kind not in STOPPING:
        return
    # Locked, so two soft bounces arriving together cannot both count to four.
    subscriber = db.session.scalar(
        select(Subscriber).where(Subscriber.email_key == email_key(address)).with_for_update()
    )
    if subscriber is None:
        return  # not ours (or erased): the event is recorded and that is all
    # Recorded before the status changes, so whatever reads the person's change (the
    # figures) finds the email the report is about, not merely the last one sent.
    row.email_id = _named_email(subscriber, event.message_id)
    db.session.flush()
    if event.kind == EventKind.COMPLAINT:
        _stop(ctx, subscriber, SubscriberStatus.COMPLAINED, event)
    elif (
        event.kind == EventKind.HARD_BOUNCE
        or _soft_bounces(ctx, subscriber, address) >= SOFT_BOUNCE_LIMIT
    ):
        _stop(ctx, subscriber, SubscriberStatus.BOUNCED, event)


def _stop(ctx: Context, subscriber: Subscriber, status: SubscriberStatus, event: Event) -> None:
    # A complaint is the stronger word: a later bounce does not overwrite it.
    if subscriber.status != SubscriberStatus.COMPLAINED:
        subscriber.status = status
    cancel_open(subscriber.id)
    stop_enrolments(subscriber.id, status, ctx.now())  # as an unsubscribe does
    suppress(ctx, subscriber.email, SuppressionReason(status))
    log.warning(
        "subscriber %s %s (%s event %s): their emails are cancelled",
        subscriber.id,
        subscriber.status,
        event.provider,
        event.event_id,
        extra={"subscriber_id": subscriber.id},
    )


def _named_email(subscriber: Subscriber, message_id: str | None) -> int | None:
    """Our email to this person with the Message-ID the report quotes (unique per email):
    a Message-ID of another person's email names nothing here."""
    if message_id is None:
        return None
    return db.session.scalar(
        select(ScheduledEmail.id).where(
            ScheduledEmail.message_id == message_id,
            ScheduledEmail.subscriber_id == subscriber.id,
        )
    )


def reported_step(subscriber_id: int) -> tuple[int | None, str] | None:
    """The magnet and step of the email this person's latest bounce or complaint report
    names (None: no report named one of their emails). This, not the last email sent, is
    what a complaint that arrives after the next send is about."""
    row = db.session.execute(
        select(ScheduledEmail.magnet_id, ScheduledEmail.step_id)
        .join(WebhookEvent, WebhookEvent.email_id == ScheduledEmail.id)
        .where(
            ScheduledEmail.subscriber_id == subscriber_id,
            WebhookEvent.kind.in_(STOPPING),
        )
        .order_by(WebhookEvent.id.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row else None


def _soft_bounces(ctx: Context, subscriber: Subscriber, address: str) -> int:
    """Soft bounces since the subscriber last consented: someone who signs up again after
    being suppressed starts from zero."""
    since = db.session.scalar(
        select(func.max(ConsentRecord.created_at)).where(
            ConsentRecord.subscriber_id == subscriber.id,
            ConsentRecord.action == ConsentAction.CONSENT,
        )
    )
    hashes = [address_hash(address, key) for key in ctx.settings.secret_keys]
    query = select(func.count(WebhookEvent.id)).where(
        WebhookEvent.email_hash.in_(hashes), WebhookEvent.kind == EventKind.SOFT_BOUNCE
    )
    if since is not None:
        query = query.where(WebhookEvent.received_at >= since)
    return db.session.scalar(query) or 0


def _address(raw: str) -> str:
    """The address as signup stored it (email-validator's normal form), where it parses."""
    address = parseaddr(raw)[1] or raw.strip()
    return normalized(address) or address


def _scrub(detail: str | None, *addresses: str) -> str | None:
    """Providers quote the recipient in their diagnostics; keep the text, not the address."""
    if not detail:
        return None
    for address in {a for a in addresses if a}:
        detail = re.sub(re.escape(address), "<recipient>", detail, flags=re.IGNORECASE)
    return detail[:MAX_DETAIL]

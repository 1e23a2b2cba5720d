"""Enrolments: which magnets a person took, with the consent entry of each, and which of
their sequences still run ("only stop emails about this magnet" stops one; an unsubscribe,
a bounce or a complaint stops them all: sending/enrolment_stops.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from ..core.extensions import db
from ..core.models import ConsentRecord, Enrolment, Magnet, Subscriber
from ..sending.context import Context
from ..sending.schedule import cancel_magnet

UNSUBSCRIBED = "unsubscribed"  # the one-click unsubscribe stopped every magnet
ONLY_THIS = "only-this-magnet"  # the unsubscribe page's "only stop emails about ..."


def enrolment(subscriber: Subscriber, magnet: Magnet) -> Enrolment | None:
    return db.session.scalar(
        select(Enrolment).where(
            Enrolment.subscriber_id == subscriber.id, Enrolment.magnet_id == magnet.id
        )
    )


def enrol(
    ctx: Context, subscriber: Subscriber, magnet: Magnet, consent: ConsentRecord | None
) -> tuple[Enrolment, bool]:
    """Record that the person took this magnet (again); True when it is new to them. A
    stopped enrolment taken again runs again: the new consent entry is the reason."""
    found = enrolment(subscriber, magnet)
    if found is None:
        db.session.flush()  # the consent entry's id
        found = Enrolment(
            subscriber_id=subscriber.id,
            magnet_id=magnet.id,
            consent_id=consent.id if consent else None,
            taken_at=ctx.now(),
        )
        db.session.add(found)
        db.session.flush()
        return found, True
    found.stopped_at = None
    found.stop_reason = None
    return found, False


def stop(ctx: Context, subscriber: Subscriber, magnet: Magnet, reason: str) -> bool:
    """Stop one magnet's emails to this person (its open rows cancelled), the others' go
    on. False when it was not running."""
    found = enrolment(subscriber, magnet)
    if found is None or found.stopped_at is not None:
        return False
    _stopped(found, ctx.now(), reason)
    cancel_magnet(subscriber.id, magnet.id)
    return True


def _stopped(found: Enrolment, now: datetime, reason: str) -> None:
    found.stopped_at = now
    found.stop_reason = reason


def magnets_of(subscriber: Subscriber) -> list[tuple[Magnet, Enrolment]]:
    """The magnets this person took, in the order they took them."""
    rows = db.session.execute(
        select(Magnet, Enrolment)
        .join(Enrolment, Enrolment.magnet_id == Magnet.id)
        .where(Enrolment.subscriber_id == subscriber.id)
        .order_by(Enrolment.taken_at, Enrolment.id)
    ).all()
    return [(magnet, found) for magnet, found in rows]


def running(subscriber: Subscriber) -> list[Magnet]:
    """The magnets whose sequences run (or would, once the person is active again)."""
    return [magnet for magnet, found in magnets_of(subscriber) if found.stopped_at is None]


def all_magnets() -> list[Magnet]:
    """Every magnet, archived ones too (their figures stay), the oldest first."""
    return list(db.session.scalars(select(Magnet).order_by(Magnet.id)))

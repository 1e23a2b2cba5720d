"""Who a broadcast goes to, as SQL: everyone active, those who took given magnets, or those
who finished a magnet's sequence; and writing its recipients in one INSERT ... SELECT."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr

from sqlalchemy import ColumnElement, String, and_, cast, exists, func, insert, literal, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from ..core.extensions import db
from ..core.models import (
    Broadcast,
    EmailStatus,
    Enrolment,
    Magnet,
    Purpose,
    ScheduledEmail,
    Subscriber,
    SubscriberStatus,
    UTCDateTime,
)

ALL, TOOK, FINISHED = "all", "took", "finished"


@dataclass(frozen=True)
class Audience:
    kind: str = ALL  # all | took | finished
    magnets: tuple[int, ...] = ()

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "magnets": list(self.magnets)})

    @classmethod
    def from_json(cls, raw: str) -> Audience:
        data = json.loads(raw)
        return cls(str(data.get("kind", ALL)), tuple(int(m) for m in data.get("magnets", ())))

    def describe(self) -> str:
        if self.kind == ALL:
            return "everyone active"
        slugs = db.session.scalars(select(Magnet.slug).where(Magnet.id.in_(self.magnets)))
        names = ", ".join(sorted(slugs))
        return f"took {names}" if self.kind == TOOK else f"finished the sequence of {names}"


def _drip_of(magnet_id: ColumnElement[int] | InstrumentedAttribute[int]) -> ColumnElement[bool]:
    """Drip rows of the enrolment's magnet (rows written before magnets named their magnet
    belong to the default one)."""
    default = select(Magnet.id).where(Magnet.is_default).scalar_subquery()
    return and_(
        ScheduledEmail.subscriber_id == Enrolment.subscriber_id,
        ScheduledEmail.purpose == Purpose.DRIP,
        or_(
            ScheduledEmail.magnet_id == magnet_id,
            and_(ScheduledEmail.magnet_id.is_(None), magnet_id == default),
        ),
    )


def condition(audience: Audience) -> ColumnElement[bool]:
    """The WHERE clause over `subscriber` that picks the audience."""
    active = Subscriber.status == SubscriberStatus.ACTIVE
    if audience.kind == ALL:
        return active
    enrolled = and_(
        Enrolment.subscriber_id == Subscriber.id,
        Enrolment.magnet_id.in_(audience.magnets),
        Enrolment.stopped_at.is_(None),
    )
    if audience.kind == TOOK:
        return and_(active, exists().where(enrolled))
    # Finished: something of that magnet's drip went, and nothing of it is still to go.
    sent = exists().where(_drip_of(Enrolment.magnet_id), ScheduledEmail.status == EmailStatus.SENT)
    still_open = exists().where(
        _drip_of(Enrolment.magnet_id), ScheduledEmail.status.in_(EmailStatus.OPEN)
    )
    return and_(active, exists().where(enrolled, sent, ~still_open))


def size(audience: Audience) -> int:
    return db.session.scalar(select(func.count(Subscriber.id)).where(condition(audience))) or 0


def materialise(broadcast: Broadcast, sender: str, now: datetime) -> int:
    """One pending row per recipient, written by the database in one statement (no rows
    through Python): the audience is frozen from here. Returns how many."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    domain = domain.encode("idna").decode("ascii")
    # Unique per row, not guessable from the ids alone.
    tag = secrets.token_hex(6)
    message_id = (
        literal(f"<b{broadcast.id}.{tag}.") + cast(Subscriber.id, String) + literal(f"@{domain}>")
    )
    at = literal(now, UTCDateTime)
    rows = select(
        Subscriber.id,
        literal(broadcast.id),
        literal(f"broadcast-{broadcast.id}"),
        literal(Purpose.BROADCAST.value),
        literal(EmailStatus.PENDING.value),
        at,
        at,
        literal(0),
        message_id,
        at,
    ).where(condition(Audience.from_json(broadcast.audience)))
    columns = [
        "subscriber_id",
        "broadcast_id",
        "step_id",
        "purpose",
        "status",
        "anchor_at",
        "due_at",
        "attempts",
        "message_id",
        "created_at",
    ]
    db.session.execute(insert(ScheduledEmail).from_select(columns, rows))
    # Counted rather than taken from the cursor: SQLite's rowcount says -1 for INSERT ... SELECT.
    written = db.session.scalar(
        select(func.count(ScheduledEmail.id)).where(ScheduledEmail.broadcast_id == broadcast.id)
    )
    return written or 0

"""A broadcast's optional send window: hours and days in each recipient's own zone, parsed
and applied as a sequence step's (content/sequence.py Window). It sets when each row
becomes due: when the send starts, and again on resume and on retry of the failed."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from ..content.sequence import SequenceError, Window
from ..core.extensions import db, rowcount
from ..core.models import Broadcast, EmailStatus, ScheduledEmail, Subscriber


class WindowError(ValueError):
    """Hours or days that are not a window; the message is one line."""


def parse(hours: str | None, days: str | None) -> Window | None:
    """A window from hours ("9-17", "08:30-20:00") and days ("mon-fri", "sat,sun");
    None when neither is given."""
    hours, days = (hours or "").strip(), (days or "").strip()
    if not hours and not days:
        return None
    try:
        return Window.parse({"hours": hours or "0-24", "days": days or "mon-sun"})
    except SequenceError as exc:
        raise WindowError(str(exc)) from None


def of(broadcast: Broadcast) -> Window | None:
    return parse(broadcast.window_hours, broadcast.window_days)


def describe(broadcast: Broadcast) -> str | None:
    """As the owner wrote it: "9-17, mon-fri" (a missing part reads as any)."""
    if of(broadcast) is None:
        return None
    return f"{broadcast.window_hours or '0-24'}, {broadcast.window_days or 'mon-sun'}"


def apply(broadcast: Broadcast, default_zone: ZoneInfo, now: datetime) -> int:
    """Move its pending rows due before the window's next opening (from `now`, in each
    recipient's zone) to that opening: one UPDATE per zone among them. How many moved."""
    window = of(broadcast)
    if window is None:
        return 0
    pending = (ScheduledEmail.broadcast_id == broadcast.id) & (
        ScheduledEmail.status == EmailStatus.PENDING
    )
    zones = db.session.scalars(
        select(Subscriber.time_zone)
        .join(ScheduledEmail, ScheduledEmail.subscriber_id == Subscriber.id)
        .where(pending)
        .distinct()
    ).all()
    moved = 0
    for name in zones:
        zone = ZoneInfo(name) if name else default_zone
        opens = window.next_opening(now, zone)
        if opens <= now:
            continue  # open there now: its rows stay due as they are
        people = select(Subscriber.id).where(
            Subscriber.time_zone == name if name else Subscriber.time_zone.is_(None)
        )
        result = db.session.execute(
            update(ScheduledEmail)
            .where(pending, ScheduledEmail.due_at < opens, ScheduledEmail.subscriber_id.in_(people))
            .values(due_at=opens, queued_at=None)
            .execution_options(synchronize_session=False)
        )
        moved += rowcount(result)
    return moved

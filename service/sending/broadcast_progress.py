"""A broadcast's progress from one query: sent, failed, skipped, remaining, rate and ETA."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, case, func, select, true

from ..core.extensions import db
from ..core.models import Broadcast, BroadcastStatus, EmailStatus, ScheduledEmail

RATE_WINDOW = timedelta(seconds=60)  # the rate is what went in the last minute


@dataclass(frozen=True)
class Progress:
    status: str
    recipients: int
    sent: int
    failed: int
    skipped: int
    remaining: int
    rate: float  # emails per second, over the last minute
    reason: str | None

    @property
    def eta(self) -> timedelta | None:
        """How long the remaining rows take at the current rate; None: cannot tell."""
        if self.remaining == 0:
            return timedelta(0)
        if self.rate <= 0:
            return None
        return timedelta(seconds=round(self.remaining / self.rate))

    @property
    def done(self) -> float:
        total = self.recipients or 1
        return (total - self.remaining) / total


def _count(status: EmailStatus | tuple[str, ...]) -> ColumnElement[int]:
    test = (
        ScheduledEmail.status.in_(status)
        if isinstance(status, tuple)
        else ScheduledEmail.status == status
    )
    return func.coalesce(func.sum(case((test, 1), else_=0)), 0)


def progress(broadcast_id: int, now: datetime) -> Progress | None:
    """The broadcast's status and its rows' counts, read together in one statement (so a
    status and counts never disagree)."""
    since = now - RATE_WINDOW
    recent = func.coalesce(
        func.sum(
            case(
                (
                    (ScheduledEmail.status == EmailStatus.SENT) & (ScheduledEmail.sent_at > since),
                    1,
                ),
                else_=0,
            )
        ),
        0,
    )
    counts = (
        select(
            _count(EmailStatus.SENT).label("sent"),
            _count(EmailStatus.FAILED).label("failed"),
            _count(EmailStatus.CANCELLED).label("skipped"),
            _count(EmailStatus.OPEN).label("remaining"),
            recent.label("recent"),
            func.min(ScheduledEmail.sent_at).label("first"),
        )
        .where(ScheduledEmail.broadcast_id == broadcast_id)
        .subquery()
    )
    row = db.session.execute(
        select(Broadcast.status, Broadcast.reason, counts)
        .join_from(Broadcast, counts, true())  # one row of counts beside the broadcast
        .where(Broadcast.id == broadcast_id)
    ).first()
    if row is None:
        return None
    span = RATE_WINDOW.total_seconds()
    if row.first is not None:
        span = min(span, max((now - row.first).total_seconds(), 1.0))
    total = int(row.sent) + int(row.failed) + int(row.skipped) + int(row.remaining)
    return Progress(
        status=row.status,
        recipients=total,
        sent=int(row.sent),
        failed=int(row.failed),
        skipped=int(row.skipped),
        remaining=int(row.remaining),
        rate=int(row.recent) / span,
        reason=row.reason,
    )


def live_ids() -> list[int]:
    """The broadcasts whose recipients may still be sent: sending or paused."""
    return list(
        db.session.scalars(select(Broadcast.id).where(Broadcast.status.in_(BroadcastStatus.LIVE)))
    )

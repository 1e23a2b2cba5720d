"""A broadcast's progress from one statement: sent, failed, skipped, remaining, rate and ETA."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, text

from ..core.extensions import db
from ..core.models import Broadcast, BroadcastStatus, UTCDateTime

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


# One statement, so one snapshot: a status and its counts never disagree. Sent, failed and
# skipped are kept figures (insights/kept_sql.py); what remains is counted from the partial
# index of open broadcast rows (bounded by what is left), the rate from the last minute of
# the sent_at index (bounded by what went out in that minute, all broadcasts together).
PROGRESS = (
    text(
        "SELECT b.status, b.reason, o.remaining, r.recent, r.first, k.name, k.n "
        "FROM broadcast b "
        "CROSS JOIN (SELECT count(*) AS remaining FROM scheduled_email "
        "WHERE broadcast_id = :b AND status IN ('pending', 'sending')) o "
        "CROSS JOIN (SELECT count(*) AS recent, min(sent_at) AS first FROM scheduled_email "
        "WHERE broadcast_id = :b AND status = 'sent' AND sent_at > :since) r "
        "LEFT JOIN (SELECT name, SUM(n) AS n FROM (SELECT name, n FROM figure_total "
        "WHERE magnet_id = :m AND name IN ('b_sent', 'b_failed', 'b_cancelled') UNION ALL "
        "SELECT name, n FROM figure_delta "
        "WHERE magnet_id = :m AND name IN ('b_sent', 'b_failed', 'b_cancelled')) f "
        "GROUP BY name) k ON 1 = 1 "
        "WHERE b.id = :b"
    )
    .bindparams(bindparam("since", type_=UTCDateTime()))
    .columns(first=UTCDateTime())
)


def progress(broadcast_id: int, now: datetime) -> Progress | None:
    """The broadcast's status and its rows' counts, read together."""
    since = now - RATE_WINDOW
    rows = db.session.execute(
        PROGRESS, {"b": broadcast_id, "m": -broadcast_id, "since": since}
    ).all()
    if not rows:
        return None
    row = rows[0]
    kept = {name: int(n) for *_, name, n in rows if name is not None}
    sent, recent = kept.get("b_sent", 0), int(row.recent)
    span = RATE_WINDOW.total_seconds()
    if row.first is not None and recent >= sent:  # all it sent went within the window
        span = min(span, max((now - row.first).total_seconds(), 1.0))
    failed, skipped = kept.get("b_failed", 0), kept.get("b_cancelled", 0)
    remaining = int(row.remaining)
    return Progress(
        status=row.status,
        recipients=sent + failed + skipped + remaining,
        sent=sent,
        failed=failed,
        skipped=skipped,
        remaining=remaining,
        rate=recent / span,
        reason=row.reason,
    )


def live_ids() -> list[int]:
    """The broadcasts whose recipients may still be sent: sending or paused."""
    return list(
        db.session.scalars(select(Broadcast.id).where(Broadcast.status.in_(BroadcastStatus.LIVE)))
    )

"""A broadcast's progress from one statement: sent, failed, skipped, remaining, rate and ETA."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text

from ..core.extensions import db
from ..core.models import Broadcast, BroadcastStatus

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
# skipped, and the sends of each recent minute, are kept figures (insights/kept_sql.py);
# what remains is counted from the partial index of open broadcast rows: bounded by what is
# left to send, nothing once it finished.
PROGRESS = text(
    "SELECT b.status, b.reason, o.remaining, k.name, k.part, k.n "
    "FROM broadcast b "
    "CROSS JOIN (SELECT count(*) AS remaining FROM scheduled_email "
    "WHERE broadcast_id = :b AND status IN ('pending', 'sending')) o "
    "LEFT JOIN (SELECT name, part, SUM(n) AS n FROM (SELECT name, part, n FROM figure_total "
    "WHERE magnet_id = :m AND name IN ('b_sent', 'b_failed', 'b_cancelled', 'b_minute') "
    "UNION ALL SELECT name, part, n FROM figure_delta "
    "WHERE magnet_id = :m AND name IN ('b_sent', 'b_failed', 'b_cancelled', 'b_minute')) f "
    "GROUP BY name, part) k ON 1 = 1 "
    "WHERE b.id = :b"
)


def progress(broadcast_id: int, now: datetime) -> Progress | None:
    """The broadcast's status and its rows' counts, read together."""
    rows = db.session.execute(PROGRESS, {"b": broadcast_id, "m": -broadcast_id}).all()
    if not rows:
        return None
    row = rows[0]
    kept = {name: int(n) for *_, name, part, n in rows if name is not None and not part}
    sent, failed, skipped = (kept.get(f"b_{x}", 0) for x in ("sent", "failed", "cancelled"))
    remaining = int(row.remaining)
    return Progress(
        status=row.status,
        recipients=sent + failed + skipped + remaining,
        sent=sent,
        failed=failed,
        skipped=skipped,
        remaining=remaining,
        rate=_rate({r.part: int(r.n) for r in rows if r.name == "b_minute"}, now),
        reason=row.reason,
    )


def _rate(minutes: dict[str, int], now: datetime) -> float:
    """Sends per second from the minute a minute ago on (60 to 120 s of them), or from the
    first minute it sent in if that is later."""
    minutes = {part: n for part, n in minutes.items() if n}
    start = (now - RATE_WINDOW).astimezone(UTC).replace(second=0, microsecond=0)
    counted = {part: n for part, n in minutes.items() if n and part >= f"{start:%Y-%m-%dT%H:%M}"}
    if not counted:
        return 0.0
    if min(minutes) >= f"{start:%Y-%m-%dT%H:%M}":  # it began sending within the window
        start = datetime.strptime(min(minutes), "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)
    return sum(counted.values()) / max((now - start).total_seconds(), 1.0)


def live_ids() -> list[int]:
    """The broadcasts whose recipients may still be sent: sending or paused."""
    return list(
        db.session.scalars(select(Broadcast.id).where(Broadcast.status.in_(BroadcastStatus.LIVE)))
    )

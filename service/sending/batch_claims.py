"""Claiming due rows N at a time: one conditional UPDATE and one durable commit for N sends,
each still re-checked and recorded before the next is sent. A row whose batch lease runs
short is not sent by the batch (delivery.Claimed re-checks it), so a row left behind by a
slow batch goes once, by whoever claims it after its lease."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update

from ..core.extensions import db
from ..core.models import Broadcast, BroadcastStatus, EmailStatus, ScheduledEmail

CLAIM_BATCH = 50  # as a hand-off chunk: one claim and one check per task


def _not_paused() -> ColumnElement[bool]:
    """A drip row, or a broadcast's row while the broadcast is sending (a pause stops the
    next claim)."""
    sending = select(Broadcast.id).where(Broadcast.status == BroadcastStatus.SENDING)
    return or_(ScheduledEmail.broadcast_id.is_(None), ScheduledEmail.broadcast_id.in_(sending))


def claim_batch(ids: list[int], now: datetime, lease: float) -> tuple[list[int], datetime]:
    """Claim those of `ids` that are due (or whose lease ran out) and not paused, all with
    one lease; returns the ids claimed and that lease's end. Only one claimant can win a row:
    the predicate is re-checked on the locked row (a concurrent winner changed its status or
    its lease)."""
    held = now + timedelta(seconds=lease)
    result = db.session.execute(
        update(ScheduledEmail)
        .where(
            ScheduledEmail.id.in_(ids),
            _not_paused(),
            or_(
                and_(ScheduledEmail.status == EmailStatus.PENDING, ScheduledEmail.due_at <= now),
                and_(
                    ScheduledEmail.status == EmailStatus.SENDING, ScheduledEmail.lease_until < now
                ),
            ),
        )
        .values(
            status=EmailStatus.SENDING,
            lease_until=held,
            attempts=ScheduledEmail.attempts + 1,
            # The hand-off is consumed: from here the claim's lease (or a retry's due time)
            # decides when a pass may hand the row again.
            queued_at=None,
        )
        .returning(ScheduledEmail.id)
        .execution_options(synchronize_session=False)
    )
    claimed = sorted(result.scalars())
    # A durable commit: the SMTP sends follow at once, and a claim lost in a database crash
    # after it was acknowledged would let another worker send the same emails meanwhile.
    db.session.commit()
    return claimed, held


def extend(
    ids: list[int], held: datetime, now: datetime, lease: float
) -> tuple[set[int], datetime]:
    """A new lease for those of `ids` still claimed with `held` and not paused (a slow batch
    keeps its rows, as a fresh claim would); returns them and the new lease's end."""
    renewed = now + timedelta(seconds=lease)
    result = db.session.execute(
        update(ScheduledEmail)
        .where(
            ScheduledEmail.id.in_(ids),
            _not_paused(),
            ScheduledEmail.status == EmailStatus.SENDING,
            ScheduledEmail.lease_until == held,
        )
        .values(lease_until=renewed)
        .returning(ScheduledEmail.id)
        .execution_options(synchronize_session=False)
    )
    kept = set(result.scalars())
    db.session.commit()
    return kept, renewed


def unclaim(ids: set[int], held: datetime | None) -> None:
    """Give back rows claimed in a batch and not sent (the worker is stopping)."""
    if not ids or held is None:
        return
    db.session.execute(
        update(ScheduledEmail)
        .where(
            ScheduledEmail.id.in_(ids),
            ScheduledEmail.status == EmailStatus.SENDING,
            ScheduledEmail.lease_until == held,
        )
        .values(status=EmailStatus.PENDING, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()

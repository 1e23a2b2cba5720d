"""Claiming a broadcast's rows N at a time: one conditional UPDATE and one durable commit
for N sends, each still re-checked and recorded before the next is sent. A row whose batch
lease runs short is not sent by the batch (delivery.why_unwanted), so a row left behind by a
slow batch goes once, by whoever claims it after its lease."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update

from ..core.extensions import db
from ..core.models import Broadcast, BroadcastStatus, EmailStatus, ScheduledEmail

CLAIM_BATCH = 20


def broadcast_rows(ids: list[int]) -> set[int]:
    """Which of these rows belong to a broadcast (those are claimed in batches)."""
    found = set(
        db.session.scalars(
            select(ScheduledEmail.id).where(
                ScheduledEmail.id.in_(ids), ScheduledEmail.broadcast_id.is_not(None)
            )
        )
    )
    db.session.commit()
    return found


def claim_batch(ids: list[int], now: datetime, lease: float) -> tuple[list[int], datetime]:
    """Claim those of `ids` that are due (or whose lease ran out) and whose broadcast is
    sending, all with one lease; returns the ids claimed and that lease's end."""
    held = now + timedelta(seconds=lease)
    sending = select(Broadcast.id).where(Broadcast.status == BroadcastStatus.SENDING)
    result = db.session.execute(
        update(ScheduledEmail)
        .where(
            ScheduledEmail.id.in_(ids),
            ScheduledEmail.broadcast_id.in_(sending),
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
            queued_at=None,
        )
        .returning(ScheduledEmail.id)
        .execution_options(synchronize_session=False)
    )
    claimed = sorted(result.scalars())
    db.session.commit()  # durable, as a single claim's: the sends follow at once
    return claimed, held


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

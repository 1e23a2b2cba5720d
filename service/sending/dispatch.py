"""The scheduler pass: find what is due (or whose lease expired) and hand it to the worker;
the worker's side of a handed-off batch."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update

from ..core.extensions import db
from ..core.models import EmailStatus, Outcome, ScheduledEmail
from ..core.settings import Settings
from .context import Context
from .delivery import deliver
from .publish import sync_file

log = logging.getLogger(__name__)
BATCH = 200
MAX_BATCHES = 1000


def hand_off_lease(settings: Settings) -> timedelta:
    """A hand-off is a lease like a claim's (SEND_LEASE): rows handed to a worker that died
    before claiming them are handed again once it runs out. A live worker renews it."""
    return timedelta(seconds=settings.send_lease)


def claim_due(ctx: Context, now: datetime, limit: int = BATCH) -> list[int]:
    """Mark up to `limit` due rows as handed off; SKIP LOCKED lets passes run side by side."""
    stale = now - hand_off_lease(ctx.settings)
    due = (
        select(ScheduledEmail.id)
        .where(
            ScheduledEmail.status == EmailStatus.PENDING,
            ScheduledEmail.due_at <= now,
            (ScheduledEmail.queued_at.is_(None)) | (ScheduledEmail.queued_at < stale),
        )
        .order_by(ScheduledEmail.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    expired = (
        select(ScheduledEmail.id)
        .where(
            ScheduledEmail.status == EmailStatus.SENDING,
            ScheduledEmail.lease_until < now,
            (ScheduledEmail.queued_at.is_(None)) | (ScheduledEmail.queued_at < stale),
        )
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(db.session.scalars(due)) + list(db.session.scalars(expired))
    if ids:
        db.session.execute(
            update(ScheduledEmail)
            .where(ScheduledEmail.id.in_(ids))
            .values(queued_at=now)
            .execution_options(synchronize_session=False)
        )
    db.session.commit()
    return ids


def release(ids: list[int]) -> None:
    """Undo a hand-off that did not reach the worker, so the next pass tries again."""
    db.session.execute(
        update(ScheduledEmail)
        .where(ScheduledEmail.id.in_(ids))
        .values(queued_at=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def renew(ids: list[int], now: datetime) -> None:
    """Extend the hand-off of those rows no one has claimed since (a claim clears it)."""
    db.session.execute(
        update(ScheduledEmail)
        .where(ScheduledEmail.id.in_(ids), ScheduledEmail.queued_at.is_not(None))
        .values(queued_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def deliver_batch(ctx: Context, ids: list[int], stopping: Callable[[], bool]) -> int:
    """Deliver a handed-off batch in turn, renewing the hand-off of the rest every half lease,
    so a slow worker keeps its rows; stopping, hand the rest back. Returns how many went."""
    sent = 0
    renewed: datetime | None = None
    for done, email_id in enumerate(ids):
        if stopping():
            release(ids[done:])  # now, rather than when the hand-off runs out
            break
        now = ctx.now()
        if renewed is None or now - renewed > hand_off_lease(ctx.settings) / 2:
            renew(ids[done:], now)
            renewed = now
        sent += deliver(ctx, email_id) == Outcome.SENT
    return sent


def run_pass(ctx: Context, handoff: Callable[[list[int]], None], batch: int = BATCH) -> int:
    """One scheduler pass; returns how many emails were handed off."""
    changes = sync_file(ctx)
    if changes is not None:
        log.info("published the edited sequence file: %s", "; ".join(changes.as_lines()))
    total = 0
    for _ in range(MAX_BATCHES):
        ids = claim_due(ctx, ctx.now(), batch)
        if not ids:
            break
        try:
            handoff(ids)
        except Exception as exc:  # the broker is down: the rows stay due for the next pass
            release(ids)
            log.warning("scheduler pass could not hand off %s emails: %s", len(ids), exc)
            break
        total += len(ids)
    return total

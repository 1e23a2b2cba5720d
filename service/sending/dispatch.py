"""The scheduler pass: find what is due (or whose lease expired) and hand it to the worker."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update

from ..core.extensions import db
from ..core.models import EmailStatus, ScheduledEmail
from .context import Context
from .sequence_sync import sync_if_changed

log = logging.getLogger(__name__)
BATCH = 200
REQUEUE_AFTER = timedelta(minutes=5)  # a handed-off row not sent by then is handed again
MAX_BATCHES = 1000


def claim_due(now: datetime, limit: int = BATCH) -> list[int]:
    """Mark up to `limit` due rows as handed off; SKIP LOCKED lets passes run side by side."""
    stale = now - REQUEUE_AFTER
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


def run_pass(ctx: Context, handoff: Callable[[list[int]], None], batch: int = BATCH) -> int:
    """One scheduler pass; returns how many emails were handed off."""
    changes = sync_if_changed(ctx)
    if changes:
        log.info("applied the edited sequence file to %s scheduled emails", len(changes))
    total = 0
    for _ in range(MAX_BATCHES):
        ids = claim_due(ctx.now(), batch)
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

"""The scheduler pass: find what is due (or whose lease expired) and hand it to the worker;
the worker's side of a handed-off batch."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, select, update

from ..core.extensions import db
from ..core.models import Broadcast, EmailStatus, Outcome, ScheduledEmail
from ..core.settings import Settings
from . import broadcasts, throttling
from .batch_claims import CLAIM_BATCH, claim_batch
from .context import Context
from .delivery import Claimed
from .publish import sync_file

log = logging.getLogger(__name__)
BATCH = 200
MAX_BATCHES = 1000
# A broadcast's rows handed out and not yet claimed, at most: enough to keep the workers busy
# until the next pass (at its pace, when it has one), not so many that they wait in the
# broker past their hand-off lease and are handed again.
BROADCAST_BACKLOG = 10_000


def hand_off_lease(settings: Settings) -> timedelta:
    """A hand-off is a lease like a claim's (SEND_LEASE): rows handed to a worker that died
    before claiming them are handed again once it runs out. A live worker renews it."""
    return timedelta(seconds=settings.send_lease)


def _of(broadcast_id: int | None) -> ColumnElement[bool]:
    if broadcast_id is None:
        return ScheduledEmail.broadcast_id.is_(None)
    return ScheduledEmail.broadcast_id == broadcast_id


def claim_due(
    ctx: Context, now: datetime, limit: int = BATCH, broadcast_id: int | None = None
) -> list[int]:
    """Mark up to `limit` due rows as handed off; SKIP LOCKED lets passes run side by side.
    The drip's rows, or with `broadcast_id` that broadcast's."""
    stale = now - hand_off_lease(ctx.settings)
    due = (
        select(ScheduledEmail.id)
        .where(
            _of(broadcast_id),
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
            _of(broadcast_id),
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
    """Deliver a handed-off batch in turn, claimed CLAIM_BATCH rows at a time, renewing the
    hand-off of the rest every half lease, so a slow worker keeps its rows; stopping, hand
    the rest back. Returns how many went."""
    sent = 0
    renewed: datetime | None = None
    claimed: Claimed | None = None
    broadcast_rows = False
    for done, email_id in enumerate(ids):
        if stopping():
            if claimed is not None:
                claimed.give_back()
            release(ids[done:])  # now, rather than when the hand-off runs out
            break
        now = ctx.now()
        if renewed is None or now - renewed > hand_off_lease(ctx.settings) / 2:
            renew(ids[done:], now)
            renewed = now
        if done % CLAIM_BATCH == 0:
            if claimed is not None:
                claimed.give_back()  # none left, unless a row's lease could not be kept
            chunk = ids[done : done + CLAIM_BATCH]
            got, held = claim_batch(chunk, now, ctx.settings.send_lease)
            claimed = Claimed.check(ctx, got, held)
            broadcast_rows = broadcast_rows or bool(claimed.broadcasts)
        if claimed is not None and email_id in claimed:
            claimed.keep(now)
            sent += claimed.send(email_id) == Outcome.SENT
    if claimed is not None:
        claimed.give_back()  # none, unless the loop stopped early
    if broadcast_rows:  # the last batch of a broadcast marks it finished at once
        broadcasts.finish_done(ctx.now())
    return sent


def run_pass(ctx: Context, handoff: Callable[[list[int]], None], batch: int = BATCH) -> int:
    """One scheduler pass; returns how many emails were handed off. The drip's due rows go
    first, then each sending broadcast's (a broadcast never holds up a sequence email)."""
    changes = sync_file(ctx)
    if changes is not None:
        log.info("published the edited sequence file: %s", "; ".join(changes.as_lines()))
    broadcasts.start_due(ctx)
    throttling.recover(ctx.settings.send_rate, ctx.now())
    db.session.commit()
    total = _hand(ctx, handoff, batch, None, MAX_BATCHES * batch)
    for broadcast_id in broadcasts.sending_ids():
        room = _room(ctx, broadcast_id)
        if room > 0:
            total += _hand(ctx, handoff, min(batch, room), broadcast_id, room)
    broadcasts.finish_done(ctx.now())
    return total


def _hand(
    ctx: Context,
    handoff: Callable[[list[int]], None],
    batch: int,
    broadcast_id: int | None,
    most: int,
) -> int:
    total = 0
    while total < most:
        ids = claim_due(ctx, ctx.now(), min(batch, most - total), broadcast_id)
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


def _room(ctx: Context, broadcast_id: int) -> int:
    """How many more of the broadcast's rows this pass may hand out (BROADCAST_BACKLOG)."""
    now = ctx.now()
    broadcast = db.session.get_one(Broadcast, broadcast_id)
    rate = throttling.current_rate(broadcast, ctx.settings.send_rate)
    target = BROADCAST_BACKLOG
    if rate is not None:
        target = min(target, max(BATCH, round(rate * ctx.settings.dispatch_interval * 2)))
    stale = now - hand_off_lease(ctx.settings)
    handed = db.session.scalar(
        select(func.count(ScheduledEmail.id)).where(
            ScheduledEmail.broadcast_id == broadcast_id,
            ScheduledEmail.status == EmailStatus.PENDING,
            ScheduledEmail.queued_at >= stale,
        )
    )
    db.session.commit()
    return target - (handed or 0)

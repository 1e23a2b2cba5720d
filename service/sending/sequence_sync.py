"""Applying a magnet's new content to people mid-sequence, and describing it beforehand.

Positions are kept by step id: each open drip row of the magnet is checked against what the
new content says should come after the subscriber's last sent step, and its due time
against the new delay and window. sending/publish.py decides when; this module does it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ..content.sequence import Sequence, Step
from ..core.extensions import db
from ..core.models import EmailStatus, Purpose, ScheduledEmail, Subscriber
from .context import Context
from .schedule import same_magnet, schedule_step, zone_of


@dataclass(frozen=True)
class Change:
    subscriber_id: int
    email_id: int
    old_step: str
    new_step: str | None  # None: the sequence now ends before this row
    old_due: datetime
    new_due: datetime | None


def _last_sent(
    subscriber_ids: set[int], magnet_id: int | None
) -> dict[int, tuple[list[str], str | None]]:
    """For each subscriber: the ids of the magnet's drip steps sent, and the last one sent."""
    found: dict[int, tuple[list[str], str | None]] = {i: ([], None) for i in subscriber_ids}
    rows = db.session.execute(
        select(ScheduledEmail.subscriber_id, ScheduledEmail.step_id)
        .where(
            ScheduledEmail.subscriber_id.in_(subscriber_ids),
            same_magnet(magnet_id),
            ScheduledEmail.purpose == Purpose.DRIP,
            ScheduledEmail.status == EmailStatus.SENT,
        )
        .order_by(ScheduledEmail.sent_at)
    )
    for subscriber_id, step_id in rows:
        found[subscriber_id][0].append(step_id)
        found[subscriber_id] = (found[subscriber_id][0], step_id)
    return found


def _expected(sequence: Sequence, sent: list[str], last: str | None) -> Step | None:
    if last is None:
        return next((s for s in sequence.steps if s.id not in sent), None)
    return sequence.after(last, set(sent))


def plan(sequence: Sequence, magnet_id: int | None) -> list[Change]:
    """What applying this sequence to the magnet would change among emails not yet claimed."""
    rows = list(
        db.session.scalars(
            select(ScheduledEmail).where(
                same_magnet(magnet_id),
                ScheduledEmail.purpose == Purpose.DRIP,
                ScheduledEmail.status == EmailStatus.PENDING,
            )
        )
    )
    history = _last_sent({r.subscriber_id for r in rows}, magnet_id)
    subscribers = {
        s.id: s
        for s in db.session.scalars(select(Subscriber).where(Subscriber.id.in_(history.keys())))
    }
    changes = []
    for row in rows:
        sent, last = history[row.subscriber_id]
        step = _expected(sequence, sent, last)
        if step is not None and step.id == row.step_id and row.attempts:
            continue  # a retry backing off keeps its own due time
        zone = zone_of(subscribers[row.subscriber_id], sequence)
        due = step.due_after(row.anchor_at, zone) if step else None
        if step is None or step.id != row.step_id or due != row.due_at:
            changes.append(
                Change(
                    row.subscriber_id,
                    row.id,
                    row.step_id,
                    step.id if step else None,
                    row.due_at,
                    due,
                )
            )
    return changes


def apply(ctx: Context) -> list[Change]:
    """Reschedule, replace or end the open rows of the context's magnet so they follow the
    context's content; in the caller's transaction."""
    sequence = ctx.content
    changes = plan(sequence, ctx.magnet_id)
    for change in changes:
        row = db.session.get_one(ScheduledEmail, change.email_id)
        if change.new_step == change.old_step:
            assert change.new_due is not None  # a step of the file has a due time
            row.due_at = change.new_due
            continue
        row.status = EmailStatus.CANCELLED
        db.session.flush()
        if change.new_step is not None:
            subscriber = db.session.get_one(Subscriber, change.subscriber_id)
            step = sequence.step(change.new_step)
            assert step is not None  # plan() took it from this sequence
            _replace(ctx, subscriber, step, row.anchor_at)
    return changes


def _replace(ctx: Context, subscriber: Subscriber, step: Step, anchor: datetime) -> None:
    existing = db.session.scalar(
        select(ScheduledEmail).where(
            ScheduledEmail.subscriber_id == subscriber.id,
            same_magnet(ctx.magnet_id),
            ScheduledEmail.step_id == step.id,
            ScheduledEmail.purpose == Purpose.DRIP,
        )
    )
    if existing is None:
        schedule_step(ctx, subscriber, step, anchor)
    elif existing.status in (EmailStatus.CANCELLED, EmailStatus.FAILED):
        existing.status = EmailStatus.PENDING
        existing.anchor_at = anchor
        existing.due_at = step.due_after(anchor, zone_of(subscriber, ctx.content))

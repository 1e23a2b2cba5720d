"""Writing the schedule: first email, guide resends, the next step, cancellation."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Table, insert, select, update

from ..content.sequence import Sequence, Step
from ..core.extensions import db, rowcount
from ..core.models import EmailStatus, Purpose, ScheduledEmail, Subscriber
from .context import Context
from .message import new_message_id

RESEND_GAP = timedelta(days=1)


def zone_of(subscriber: Subscriber, sequence: Sequence) -> ZoneInfo:
    return ZoneInfo(subscriber.time_zone) if subscriber.time_zone else sequence.default_zone


def _values(
    ctx: Context, subscriber: Subscriber, step: Step, purpose: str, anchor: datetime, due: datetime
) -> dict[str, object]:
    return {
        "subscriber_id": subscriber.id,
        "magnet_id": ctx.magnet_id,  # the context's magnet: whose content renders it
        "step_id": step.id,
        "purpose": purpose,
        "status": EmailStatus.PENDING,
        "anchor_at": anchor,
        "due_at": due,
        "attempts": 0,
        "message_id": new_message_id(ctx.sender),
        "created_at": anchor,
    }


def _add(
    ctx: Context, subscriber: Subscriber, step: Step, purpose: str, anchor: datetime, due: datetime
) -> ScheduledEmail:
    email = ScheduledEmail(**_values(ctx, subscriber, step, purpose, anchor, due))
    db.session.add(email)
    db.session.flush()
    return email


def schedule_step(
    ctx: Context, subscriber: Subscriber, step: Step, anchor: datetime
) -> ScheduledEmail:
    """A drip step, due its delay after `anchor` (in its send window)."""
    due = step.due_after(anchor, zone_of(subscriber, ctx.content))
    return _add(ctx, subscriber, step, Purpose.DRIP, anchor, due)


def schedule_confirmation(ctx: Context, subscriber: Subscriber) -> ScheduledEmail:
    now = ctx.now()
    step = Step(id="confirm", delay=timedelta(0), template="confirm")
    return _add(ctx, subscriber, step, Purpose.CONFIRM, now, now)


def schedule_resend(ctx: Context, subscriber: Subscriber) -> ScheduledEmail | None:
    """The guide again for someone who asked twice, at most once a day."""
    now, sequence = ctx.now(), ctx.content
    recent = db.session.scalar(
        select(ScheduledEmail.id).where(
            ScheduledEmail.subscriber_id == subscriber.id,
            same_magnet(ctx.magnet_id),
            ScheduledEmail.step_id == sequence.first.id,
            ScheduledEmail.purpose.in_((Purpose.DRIP, Purpose.RESEND)),
            ScheduledEmail.created_at > now - RESEND_GAP,
            ScheduledEmail.status != EmailStatus.CANCELLED,
        )
    )
    if recent is not None:
        return None
    return _add(ctx, subscriber, sequence.first, Purpose.RESEND, now, now)


def same_magnet(magnet_id: int | None) -> ColumnElement[bool]:
    """Rows of that magnet (step ids are only unique within one magnet's sequence)."""
    if magnet_id is None:
        return ScheduledEmail.magnet_id.is_(None)
    return ScheduledEmail.magnet_id == magnet_id


def _drip(subscriber_id: int, magnet_id: int | None) -> tuple[ColumnElement[bool], ...]:
    """The subscriber's drip rows of one magnet."""
    return (
        ScheduledEmail.subscriber_id == subscriber_id,
        same_magnet(magnet_id),
        ScheduledEmail.purpose == Purpose.DRIP,
    )


def _states(subscriber_id: int, magnet_id: int | None) -> dict[str, str]:
    """Each drip step's status, in one query of two columns (no rows loaded)."""
    found = db.session.execute(
        select(ScheduledEmail.step_id, ScheduledEmail.status).where(
            *_drip(subscriber_id, magnet_id)
        )
    ).all()
    return {step_id: status for step_id, status in found}


def _sent(states: dict[str, str]) -> set[str]:
    return {step_id for step_id, status in states.items() if status == EmailStatus.SENT}


def _row(subscriber_id: int, magnet_id: int | None, step_id: str) -> ScheduledEmail:
    return db.session.scalars(
        select(ScheduledEmail).where(
            *_drip(subscriber_id, magnet_id), ScheduledEmail.step_id == step_id
        )
    ).one()


def schedule_next(
    ctx: Context, subscriber: Subscriber, after_step_id: str, sent_at: datetime
) -> None:
    """Schedule the step after `after_step_id`, `delay` after the send that just happened,
    as the context's content snapshot has it. It runs once for every drip email sent, so it
    reads only the steps' states and inserts without the ORM's unit of work (profiled: the
    two were a quarter of a worker's time per email)."""
    states = _states(subscriber.id, ctx.magnet_id)
    step = ctx.content.after(after_step_id, _sent(states))
    if step is None:
        return
    if step.id in states:  # a row of that step exists (cancelled, say): bring it back
        row = _row(subscriber.id, ctx.magnet_id, step.id)
        _revive(row, subscriber, step, sent_at, ctx.content)
        return
    due = step.due_after(sent_at, zone_of(subscriber, ctx.content))
    values = _values(ctx, subscriber, step, Purpose.DRIP, sent_at, due)
    db.session.execute(insert(cast(Table, ScheduledEmail.__table__)).values(values))


def resume_drip(ctx: Context, subscriber: Subscriber) -> ScheduledEmail | None:
    """After a resubscription: the step they stopped at comes back, counted from now."""
    now = ctx.now()
    states = _states(subscriber.id, ctx.magnet_id)
    sent = _sent(states)
    step = next((s for s in ctx.content.steps if s.id not in sent), None)
    if step is None:
        return None
    if step.id in states:
        return _revive(
            _row(subscriber.id, ctx.magnet_id, step.id), subscriber, step, now, ctx.content
        )
    return schedule_step(ctx, subscriber, step, now)


def recent_confirmation(subscriber: Subscriber, now: datetime) -> bool:
    """Whether a confirmation went to this subscriber's mailbox in the last day, through
    any of its spellings: `ann+1@` to `ann+9@` share one allowance (list bombing)."""
    same_mailbox = (
        Subscriber.mailbox_key == subscriber.mailbox_key
        if subscriber.mailbox_key
        else Subscriber.id == subscriber.id  # a row written without it (benchmarks)
    )
    found = db.session.scalar(
        select(ScheduledEmail.id)
        .join(Subscriber, Subscriber.id == ScheduledEmail.subscriber_id)
        .where(
            same_mailbox,
            ScheduledEmail.purpose == Purpose.CONFIRM,
            ScheduledEmail.created_at > now - RESEND_GAP,
        )
        .limit(1)
    )
    return found is not None


def _revive(
    email: ScheduledEmail, subscriber: Subscriber, step: Step, anchor: datetime, sequence: Sequence
) -> ScheduledEmail:
    if email.status in (EmailStatus.CANCELLED, EmailStatus.FAILED):
        email.status = EmailStatus.PENDING
        email.anchor_at = anchor
        email.due_at = step.due_after(anchor, zone_of(subscriber, sequence))
        email.lease_until = None
        email.queued_at = None
    return email


def cancel_open(subscriber_id: int) -> None:
    """Cancel everything not yet sent, claimed rows included (the worker re-checks)."""
    db.session.execute(
        update(ScheduledEmail)
        .where(
            ScheduledEmail.subscriber_id == subscriber_id,
            ScheduledEmail.status.in_(EmailStatus.OPEN),
        )
        .values(status=EmailStatus.CANCELLED, lease_until=None)
    )


def cancel_magnet(subscriber_id: int, magnet_id: int) -> int:
    """Cancel what is not yet sent of one magnet (its guide, resends, sequence): the
    others' go on. A claimed row is cancelled too; the worker re-checks before sending."""
    result = db.session.execute(
        update(ScheduledEmail)
        .where(
            ScheduledEmail.subscriber_id == subscriber_id,
            ScheduledEmail.magnet_id == magnet_id,
            ScheduledEmail.status.in_(EmailStatus.OPEN),
        )
        .values(status=EmailStatus.CANCELLED, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)

"""EMAIL_MIN_GAP: two emails to one person from different magnets' sequences, or from a
broadcast, never leave closer together than the gap; the later one waits.

Applied at send time, to the row a worker has just claimed. A magnet's first email (its
guide, a confirmation, a resend) and an owner's test are never held back, but once sent
they count: a follow-up of another magnet waits the gap after a guide that just went out.
Emails of one magnet's own sequence keep their own delays between them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select

from ..core.extensions import db
from ..core.models import EmailStatus, Purpose, ScheduledEmail, Subscriber
from .context import Context

NEVER_HELD = (Purpose.CONFIRM, Purpose.RESEND, Purpose.TEST)


def is_first_email(ctx: Context, email: ScheduledEmail) -> bool:
    """A magnet's guide, a confirmation or a resend: what a signup is waiting for."""
    if email.purpose in NEVER_HELD:
        return True
    if email.purpose != Purpose.DRIP:
        return False  # a broadcast, and whatever comes later: subject to the gap
    return email.step_id == ctx.for_magnet(email.magnet_id).content.first.id


def _other_source(email: ScheduledEmail) -> ColumnElement[bool]:
    """Rows that are not of this email's own sequence: another magnet's, or no magnet's (a
    broadcast). A broadcast's own rows are one per person, so any other row is another's."""
    others = ScheduledEmail.id != email.id
    if email.magnet_id is None:
        return others
    return others & or_(
        ScheduledEmail.magnet_id.is_(None), ScheduledEmail.magnet_id != email.magnet_id
    )


def held_until(ctx: Context, email: ScheduledEmail) -> datetime | None:
    """When this claimed email may leave, if that is later than now; None: it may go now.
    Takes the subscriber's row lock first, so two workers holding emails of two magnets
    for one person decide one after the other (the second sees the first in flight)."""
    gap = ctx.settings.email_min_gap
    if not gap or is_first_email(ctx, email):
        return None
    now = ctx.now()
    db.session.execute(
        select(Subscriber.id).where(Subscriber.id == email.subscriber_id).with_for_update()
    )
    mine = (ScheduledEmail.subscriber_id == email.subscriber_id) & _other_source(email)
    last_sent = db.session.scalar(
        select(func.max(ScheduledEmail.sent_at)).where(
            mine,
            ScheduledEmail.status == EmailStatus.SENT,
            ScheduledEmail.purpose != Purpose.TEST,
            ScheduledEmail.sent_at > now - gap,
        )
    )
    if last_sent is not None:
        return last_sent + gap
    in_flight = db.session.scalar(
        select(ScheduledEmail.id)
        .where(
            mine,
            ScheduledEmail.status == EmailStatus.SENDING,
            ScheduledEmail.purpose != Purpose.TEST,
            ScheduledEmail.lease_until > now,
        )
        .limit(1)
    )
    if in_flight is not None or _another_goes_first(email, mine, now):
        return now + gap
    return None


def _another_goes_first(email: ScheduledEmail, mine: ColumnElement[bool], now: datetime) -> bool:
    """Whether another source's email to this person is due too and goes first: the one
    due earliest, then the one whose delay started counting earliest, then the older row.
    Without this order an email held to the very time another sequence's next step is due
    could lose to it again and again, whichever the workers happened to take first."""
    earlier = or_(
        ScheduledEmail.due_at < email.due_at,
        (ScheduledEmail.due_at == email.due_at) & (ScheduledEmail.anchor_at < email.anchor_at),
        (ScheduledEmail.due_at == email.due_at)
        & (ScheduledEmail.anchor_at == email.anchor_at)
        & (ScheduledEmail.id < email.id),
    )
    ahead = db.session.scalar(
        select(ScheduledEmail.id)
        .where(
            mine,
            ScheduledEmail.status == EmailStatus.PENDING,
            ScheduledEmail.purpose != Purpose.TEST,
            ScheduledEmail.due_at <= now,
            earlier,
        )
        .limit(1)
    )
    return ahead is not None


def hold(email: ScheduledEmail, until: datetime) -> None:
    """Give the claim back without counting it as an attempt: due again at `until`."""
    email.status = EmailStatus.PENDING
    email.due_at = until
    email.lease_until = None
    email.queued_at = None
    email.attempts = max(email.attempts - 1, 0)

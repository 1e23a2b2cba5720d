"""EMAIL_MIN_GAP: two emails to one person from different magnets' sequences, or from a
broadcast, never leave closer together than the gap; the later one waits.

Applied at send time, to the rows a worker has just claimed. A magnet's first email (its
guide, a confirmation, a resend) and an owner's test are never held back, but once sent
they count: a follow-up of another magnet waits the gap after a guide that just went out.
Emails of one magnet's own sequence keep their own delays between them."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import Row, or_, select

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


def held_until(ctx: Context, email: ScheduledEmail) -> datetime | None:
    """When this claimed email may leave, if that is later than now; None: it may go now."""
    return held_until_each(ctx, [email]).get(email.id)


def held_until_each(ctx: Context, emails: list[ScheduledEmail]) -> dict[int, datetime]:
    """held_until for rows claimed together: those that must wait, and until when. Takes
    their subscribers' row locks first, so two workers holding emails of two magnets for
    one person decide one after the other (the second sees the first in flight), then reads
    every row that could hold one back in one query. Decided in the batch's order: a row of
    the batch counts as in flight once it is let go (a first email always is)."""
    gap = ctx.settings.email_min_gap
    subject = [email for email in emails if gap and not is_first_email(ctx, email)]
    if not gap or not subject:
        return {}
    now = ctx.now()
    people = sorted({email.subscriber_id for email in subject})
    db.session.execute(
        select(Subscriber.id)
        .where(Subscriber.id.in_(people))
        .order_by(Subscriber.id)
        .with_for_update()
    )
    found = db.session.execute(
        select(
            ScheduledEmail.id,
            ScheduledEmail.subscriber_id,
            ScheduledEmail.magnet_id,
            ScheduledEmail.status,
            ScheduledEmail.sent_at,
            ScheduledEmail.due_at,
            ScheduledEmail.anchor_at,
        ).where(
            ScheduledEmail.subscriber_id.in_(people),
            ScheduledEmail.purpose != Purpose.TEST,
            or_(
                (ScheduledEmail.status == EmailStatus.SENT) & (ScheduledEmail.sent_at > now - gap),
                (ScheduledEmail.status == EmailStatus.SENDING) & (ScheduledEmail.lease_until > now),
                (ScheduledEmail.status == EmailStatus.PENDING) & (ScheduledEmail.due_at <= now),
            ),
        )
    ).all()
    by_person: dict[int, list[Row]] = defaultdict(list)
    for row in found:  # each row looked at for its own person's emails only, not the batch's
        by_person[row.subscriber_id].append(row)
    batch = {email.id for email in emails}
    going = batch - {email.id for email in subject}
    held: dict[int, datetime] = {}
    for email in subject:
        others = [row for row in by_person[email.subscriber_id] if _other_source(email, row)]
        until = _until(email, others, batch - going, now, gap)
        if until is None:
            going.add(email.id)
        else:
            held[email.id] = until
    return held


def _other_source(email: ScheduledEmail, row: Row) -> bool:
    """A row to the same person that is not of this email's own sequence: another magnet's,
    or no magnet's (a broadcast). A broadcast's own rows are one per person, so any other
    row is another's."""
    if row.subscriber_id != email.subscriber_id or row.id == email.id:
        return False
    return email.magnet_id is None or row.magnet_id is None or row.magnet_id != email.magnet_id


def _until(
    email: ScheduledEmail, others: list[Row], not_going: set[int], now: datetime, gap: timedelta
) -> datetime | None:
    sent = [row.sent_at for row in others if row.status == EmailStatus.SENT]
    if sent:
        return max(sent) + gap
    if any(row.status == EmailStatus.SENDING and row.id not in not_going for row in others):
        return now + gap  # in flight: claimed by another worker, or let go earlier in this batch
    # Another source's email due too goes first: the one due earliest, then the one whose
    # delay started counting earliest, then the older row. Without this order an email held
    # to the very time another sequence's next step is due could lose to it again and again,
    # whichever the workers happened to take first.
    mine = (email.due_at, email.anchor_at, email.id)
    if any(
        row.status == EmailStatus.PENDING and (row.due_at, row.anchor_at, row.id) < mine
        for row in others
    ):
        return now + gap
    return None


def hold(email: ScheduledEmail, until: datetime) -> None:
    """Give the claim back without counting it as an attempt: due again at `until`."""
    email.status = EmailStatus.PENDING
    email.due_at = until
    email.lease_until = None
    email.queued_at = None
    email.attempts = max(email.attempts - 1, 0)

"""Housekeeping, hourly: unconfirmed double opt-in signups go after 30 days, clicks after
13 months."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

from sqlalchemy import delete

from ..core.extensions import db, rowcount
from ..core.models import Click, Subscriber, SubscriberStatus
from ..sending.context import Context

UNCONFIRMED_TTL = timedelta(days=30)
CLICKS_KEPT_MONTHS = 13  # a year's figures compare with the same month a year before


def run(ctx: Context) -> int:
    """Everything housekeeping does; the rows deleted."""
    return purge_unconfirmed(ctx) + purge_old_clicks(ctx)


def purge_unconfirmed(ctx: Context) -> int:
    """Delete signups never confirmed: they gave no complete consent, so we keep nothing."""
    cutoff = ctx.now() - UNCONFIRMED_TTL
    result = db.session.execute(
        delete(Subscriber).where(
            Subscriber.status == SubscriberStatus.PENDING,
            Subscriber.created_at < cutoff,
            # Someone coming back after an opt-out is pending from that day, not from the
            # day they first signed up. (Their address stays suppressed if they are purged.)
            Subscriber.updated_at < cutoff,
        )
    )
    db.session.commit()
    return rowcount(result)


def purge_old_clicks(ctx: Context) -> int:
    """Delete the hits on click redirects older than 13 calendar months."""
    result = db.session.execute(
        delete(Click).where(Click.at < months_before(ctx.now(), CLICKS_KEPT_MONTHS))
    )
    db.session.commit()
    return rowcount(result)


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (the month's last day where
    that month is shorter: 31 March less one month is 28 or 29 February)."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    return moment.replace(
        year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1])
    )

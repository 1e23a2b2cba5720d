"""What EMAIL_MIN_GAP does to a broadcast, told to the owner: before it starts, how many of
its recipients just got (or are about to get) another email and would wait, and until
about when; while it sends, how many of its rows are being held back.

The rule itself is applied at send time by spacing.py; this module only counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import Select, exists, func, literal_column, select, union_all

from ..core.extensions import db
from ..core.models import (
    Broadcast,
    BroadcastStatus,
    EmailStatus,
    Purpose,
    ScheduledEmail,
    Subscriber,
)
from . import broadcast_window
from .broadcast_audience import Audience, condition
from .context import Context

COUNTED = 10_000  # the most emails of the gap the count before the start reads


@dataclass(frozen=True)
class GapWait:
    people: int  # recipients whose email waits
    until: datetime  # about when the last of them goes
    gap: timedelta  # EMAIL_MIN_GAP
    sending: bool = False  # counted from its held rows, not foreseen
    window: bool = False  # it has a send window: rows due later may wait for that too
    at_least: bool = False  # the count stopped past COUNTED emails: there may be more

    def sentence(self, zone: tzinfo) -> str:
        when = self.until.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        span = _span(self.gap)
        who = f"{self.people} {'recipient' if self.people == 1 else 'recipients'}"
        if self.at_least:
            who = f"at least {who}"
        if self.at_least and not self.people:
            return (
                f"EMAIL_MIN_GAP ({span}): over {COUNTED} emails went out or are due within "
                f"{span} before it, and the latest of them are not to its recipients; any who "
                f"got one of the others waits, until about {when} ({zone}) at the latest."
            )
        if self.sending and self.window:
            return (
                f"{who} wait for the send window or EMAIL_MIN_GAP ({span}); "
                f"the last goes at about {when} ({zone})."
            )
        if self.sending:
            return (
                f"EMAIL_MIN_GAP ({span}): {who} just got another email, so theirs waits; "
                f"the last goes at about {when} ({zone})."
            )
        return (
            f"EMAIL_MIN_GAP ({span}): {who} got or are due another email (a guide, a "
            f"sequence email, another broadcast) within {span} before it, so theirs waits; "
            f"the last goes at about {when} ({zone})."
        )


def _span(gap: timedelta) -> str:
    seconds = int(gap.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def predicted(audience: Audience, at: datetime, gap: timedelta) -> GapWait | None:
    """Before the start at `at`: the audience's people with another email sent, in flight or
    due within the gap before `at` (theirs goes first; the broadcast's waits the gap)."""
    if not gap:
        return None
    since = at - gap
    people, last, read, latest = db.session.execute(_counted(_latest(since, at), audience)).one()
    capped = read > COUNTED
    if not people and not capped:
        return None
    # None of the audience among the latest COUNTED: some may be among the older ones,
    # who go no later than the latest of the window.
    until = max(last if people else latest, since) + gap
    return GapWait(int(people), until, gap, at_least=capped)


def _latest(since: datetime, at: datetime) -> Any:
    """The emails sent or due in the gap, latest first, one past COUNTED at most.
    Ranges of indexes: sent in the gap (ix_scheduled_email_sent_at), due in it (the open
    rows' partial indexes), each read no further than that, then the latest of those. Right
    after an email to a whole list the gap holds one per person: reading it all, and joining
    it to the people, cost what the list costs (345 ms at 1M, 6.65x from 100k,
    bench.dashboard). Up to COUNTED the count is exact; past it, a lower bound, said as
    such; the latest, so the last of them to go, is exact either way."""
    most = COUNTED + 1
    sent = (
        select(ScheduledEmail.subscriber_id, ScheduledEmail.sent_at.label("last"))
        .where(
            ScheduledEmail.status == EmailStatus.SENT,
            ScheduledEmail.sent_at > since,
            ScheduledEmail.purpose != Purpose.TEST,
        )
        .order_by(ScheduledEmail.sent_at.desc())
        .limit(most)
    )
    due = [
        select(ScheduledEmail.subscriber_id, ScheduledEmail.due_at)
        .where(
            ScheduledEmail.status == status,
            ScheduledEmail.due_at > since,
            ScheduledEmail.due_at <= at,
            ScheduledEmail.purpose != Purpose.TEST,
        )
        .order_by(ScheduledEmail.due_at.desc())
        .limit(most)
        for status in EmailStatus.OPEN
    ]
    # Each in a subquery of its own: SQLite takes no ORDER BY or LIMIT in a UNION's part.
    recent = union_all(*(select(part.subquery()) for part in (sent, *due))).subquery()
    return (
        select(recent.c.subscriber_id, recent.c.last)
        .order_by(recent.c.last.desc())
        .limit(most)
        .subquery()
    )


def _counted(window: Any, audience: Audience) -> Select[int, Any, int, Any]:
    """(audience's people, their latest, emails read, latest read) over the window. Whether
    each is of the audience is a probe of that one person per row (a subplan: OFFSET keeps
    the planner from making it a join over every subscriber, and from running it twice)."""
    probe: Select[Any] = select(literal_column("1")).where(Subscriber.id == window.c.subscriber_id)
    member = exists(probe.where(condition(audience)).offset(literal_column("0")))
    flagged = (
        select(window.c.subscriber_id, window.c.last, member.label("member"))
        .offset(literal_column("0"))
        .subquery()
    )
    return select(
        func.count(func.distinct(flagged.c.subscriber_id)).filter(flagged.c.member),
        func.max(flagged.c.last).filter(flagged.c.member),
        func.count(),
        func.max(flagged.c.last),
    )


def held(broadcast_id: int, now: datetime, gap: timedelta, window: bool = False) -> GapWait | None:
    """While it sends: its rows held back to a later time (by the gap, or its window)."""
    if not gap and not window:
        return None
    row = db.session.execute(
        select(func.count(), func.max(ScheduledEmail.due_at)).where(
            ScheduledEmail.broadcast_id == broadcast_id,
            ScheduledEmail.status == EmailStatus.PENDING,
            ScheduledEmail.due_at > now,
        )
    ).one()
    if not row[0]:
        return None
    return GapWait(int(row[0]), row[1], gap, sending=True, window=window)


def of_broadcast(broadcast: Broadcast, now: datetime, gap: timedelta) -> GapWait | None:
    """Foreseen for a draft or a scheduled one (at its time, or now), counted once it sends."""
    if broadcast.status in BroadcastStatus.LIVE:
        return held(broadcast.id, now, gap, broadcast_window.of(broadcast) is not None)
    if broadcast.status in (BroadcastStatus.DRAFT, BroadcastStatus.SCHEDULED):
        at = max(broadcast.send_at or now, now)
        return predicted(Audience.from_json(broadcast.audience), at, gap)
    return None


def note(ctx: Context, broadcast: Broadcast) -> str | None:
    """The sentence for the owner, None when nobody waits (or EMAIL_MIN_GAP is 0)."""
    wait = of_broadcast(broadcast, ctx.now(), ctx.settings.email_min_gap)
    return wait.sentence(ctx.content.default_zone) if wait else None

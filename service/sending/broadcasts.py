"""Broadcast use cases: create, start (or schedule), pause, resume, retry the failed, and
the scheduler pass's part (start what is due, mark what is done as finished)."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import exists, select, update

from ..content.broadcast_body import BroadcastText, check
from ..core.extensions import db, rowcount
from ..core.models import (
    Broadcast,
    BroadcastStatus,
    EmailStatus,
    Magnet,
    ScheduledEmail,
    Subscriber,
    SubscriberStatus,
)
from ..core.rates import parse_rate
from . import broadcast_window
from .broadcast_audience import Audience, materialise
from .context import Context

log = logging.getLogger(__name__)
# Stop a broadcast the server refuses (the sender, the message): after this many refusals,
# when they are at least half of what was tried. A bounce (a bad recipient) does not count.
STOP_AFTER = 10


class BroadcastError(ValueError):
    """A request that cannot be done as asked; the message is one line."""


def _get(broadcast_id: int) -> Broadcast:
    broadcast = db.session.get(Broadcast, broadcast_id)
    if broadcast is None:
        raise BroadcastError(f"no broadcast {broadcast_id}")
    return broadcast


def text_of(broadcast: Broadcast) -> BroadcastText:
    return BroadcastText(
        broadcast.subject, broadcast.body_md, broadcast.body_html, broadcast.body_txt
    )


def magnet_ids(slugs: list[str]) -> tuple[int, ...]:
    ids = []
    for slug in slugs:
        found = db.session.scalar(select(Magnet.id).where(Magnet.slug == slug))
        if found is None:
            raise BroadcastError(f"no magnet {slug!r}")
        ids.append(found)
    return tuple(ids)


def create(
    ctx: Context,
    text: BroadcastText,
    audience: Audience,
    by: str,
    send_at: datetime | None = None,
    rate_limit: str | None = None,
    window: tuple[str | None, str | None] = (None, None),
) -> Broadcast:
    """A draft broadcast; nothing is sent until `send`. `window`: its send window's hours
    and days (broadcast_window), or none."""
    check(text)
    try:
        broadcast_window.parse(*window)
    except broadcast_window.WindowError as exc:
        raise BroadcastError(str(exc)) from None
    if rate_limit is not None:
        try:
            parse_rate(rate_limit)
        except ValueError as exc:
            raise BroadcastError(f"the rate {exc}") from None
    if audience.kind != "all" and not audience.magnets:
        raise BroadcastError("name at least one magnet for this audience")
    now = ctx.now()
    broadcast = Broadcast(
        subject=text.subject,
        body_md=text.body_md,
        body_html=text.body_html,
        body_txt=text.body_txt,
        audience=audience.to_json(),
        status=BroadcastStatus.DRAFT,
        send_at=send_at,
        rate_limit=rate_limit,
        window_hours=(window[0] or "").strip() or None,
        window_days=(window[1] or "").strip() or None,
        created_by=by,
        created_at=now,
        updated_at=now,
    )
    db.session.add(broadcast)
    db.session.commit()
    return broadcast


def send(ctx: Context, broadcast_id: int) -> str:
    """Start a draft now, or schedule it for its send_at; says which."""
    broadcast = _get(broadcast_id)
    if broadcast.status != BroadcastStatus.DRAFT:
        raise BroadcastError(f"broadcast {broadcast_id} is {broadcast.status}, not a draft")
    if broadcast.send_at is not None and broadcast.send_at > ctx.now():
        broadcast.status = BroadcastStatus.SCHEDULED
        db.session.commit()
        return f"scheduled for {broadcast.send_at.isoformat()}"
    count = start(ctx, broadcast_id)
    return f"sending to {count} recipients"


def start(ctx: Context, broadcast_id: int) -> int:
    """Freeze the audience: its rows written and the status `sending`, in one transaction,
    from a draft or a due scheduled broadcast only (a second start writes nothing)."""
    now = ctx.now()
    taken = db.session.execute(
        update(Broadcast)
        .where(
            Broadcast.id == broadcast_id,
            Broadcast.status.in_((BroadcastStatus.DRAFT, BroadcastStatus.SCHEDULED)),
        )
        .values(status=BroadcastStatus.SENDING, started_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if rowcount(taken) != 1:
        db.session.rollback()
        return 0
    broadcast = db.session.get_one(Broadcast, broadcast_id)
    count = materialise(broadcast, ctx.sender, now)
    broadcast.recipients = count
    broadcast_window.apply(broadcast, ctx.content.default_zone, now)
    db.session.commit()
    log.info("broadcast %s started: %s recipients", broadcast_id, count)
    return count


def _move(broadcast_id: int, from_: tuple[str, ...], to: str, reason: str | None) -> bool:
    moved = db.session.execute(
        update(Broadcast)
        .where(Broadcast.id == broadcast_id, Broadcast.status.in_(from_))
        .values(status=to, reason=reason)
        .execution_options(synchronize_session=False)
    )
    return rowcount(moved) == 1


def pause(ctx: Context, broadcast_id: int) -> None:
    """No new claims from now: emails being sent finish, the rest wait."""
    _get(broadcast_id)
    if not _move(broadcast_id, (BroadcastStatus.SENDING,), BroadcastStatus.PAUSED, "paused"):
        raise BroadcastError(f"broadcast {broadcast_id} is not sending")
    db.session.commit()


def _requeue_handed(broadcast_id: int) -> None:
    """Rows handed to workers while paused were refused; the next pass hands them again."""
    db.session.execute(
        update(ScheduledEmail)
        .where(
            ScheduledEmail.broadcast_id == broadcast_id,
            ScheduledEmail.status == EmailStatus.PENDING,
        )
        .values(queued_at=None)
        .execution_options(synchronize_session=False)
    )


def resume(ctx: Context, broadcast_id: int) -> None:
    """Carry on a paused (or stopped) broadcast where it was: sent rows stay sent."""
    _get(broadcast_id)
    resumable = (BroadcastStatus.PAUSED, BroadcastStatus.STOPPED)
    if not _move(broadcast_id, resumable, BroadcastStatus.SENDING, None):
        raise BroadcastError(f"broadcast {broadcast_id} is neither paused nor stopped")
    _requeue_handed(broadcast_id)
    # Rows left while it was paused go in the window's next opening, not at once.
    broadcast_window.apply(_get(broadcast_id), ctx.content.default_zone, ctx.now())
    db.session.commit()


def retry_failed(ctx: Context, broadcast_id: int) -> int:
    """Queue the failed rows again (of recipients still subscribed); how many."""
    broadcast = _get(broadcast_id)
    if broadcast.status in (BroadcastStatus.DRAFT, BroadcastStatus.SCHEDULED):
        raise BroadcastError(f"broadcast {broadcast_id} has not started")
    now = ctx.now()
    still_in = exists().where(
        Subscriber.id == ScheduledEmail.subscriber_id,
        Subscriber.status == SubscriberStatus.ACTIVE,
    )
    again = db.session.execute(
        update(ScheduledEmail)
        .where(
            ScheduledEmail.broadcast_id == broadcast_id,
            ScheduledEmail.status == EmailStatus.FAILED,
            still_in,
        )
        .values(
            status=EmailStatus.PENDING,
            due_at=now,
            anchor_at=now,  # the retry window runs from here
            lease_until=None,
            queued_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    count = rowcount(again)
    broadcast_window.apply(broadcast, ctx.content.default_zone, now)
    if count and broadcast.status in (BroadcastStatus.FINISHED, BroadcastStatus.STOPPED):
        broadcast.status = BroadcastStatus.SENDING
        broadcast.reason = None
        broadcast.finished_at = None
    db.session.commit()
    return count


def stop_if_refused(broadcast_id: int, reply: str) -> bool:
    """After the server refused one of its emails: stop the broadcast, saying why, once the
    refusals are STOP_AFTER or more and at least half of what was tried. The caller commits."""
    tried = db.session.execute(
        select(ScheduledEmail.status, db.func.count())
        .where(
            ScheduledEmail.broadcast_id == broadcast_id,
            ScheduledEmail.status.in_((EmailStatus.SENT, EmailStatus.FAILED)),
        )
        .group_by(ScheduledEmail.status)
    ).all()
    counts = {status: n for status, n in tried}
    failed, sent = counts.get(EmailStatus.FAILED, 0), counts.get(EmailStatus.SENT, 0)
    if failed < STOP_AFTER or failed < sent:
        return False
    reason = f"stopped: the mail server refused {failed} of {failed + sent} emails; last: {reply}"
    stopped = _move(broadcast_id, (BroadcastStatus.SENDING,), BroadcastStatus.STOPPED, reason)
    if stopped:
        log.error("broadcast %s %s", broadcast_id, reason)
    return stopped


def start_due(ctx: Context) -> list[int]:
    """Start the scheduled broadcasts whose time has come (the scheduler pass)."""
    due = list(
        db.session.scalars(
            select(Broadcast.id).where(
                Broadcast.status == BroadcastStatus.SCHEDULED, Broadcast.send_at <= ctx.now()
            )
        )
    )
    db.session.commit()
    for broadcast_id in due:
        start(ctx, broadcast_id)  # a second pass racing this one starts nothing twice
    return due


def finish_done(now: datetime) -> int:
    """Mark finished every sending broadcast none of whose rows is pending or being sent; in
    one conditional UPDATE, so a row put back meanwhile keeps it sending."""
    still_open = exists().where(
        ScheduledEmail.broadcast_id == Broadcast.id,
        ScheduledEmail.status.in_(EmailStatus.OPEN),
    )
    done = db.session.execute(
        update(Broadcast)
        .where(Broadcast.status == BroadcastStatus.SENDING, ~still_open)
        .values(status=BroadcastStatus.FINISHED, finished_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return rowcount(done)


def sending_ids() -> list[int]:
    return list(
        db.session.scalars(select(Broadcast.id).where(Broadcast.status == BroadcastStatus.SENDING))
    )

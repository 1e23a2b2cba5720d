"""The signup use case: one transaction writes subscriber, consent and first email."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..content.magnets import default_magnet
from ..core import metrics
from ..core.addresses import email_key, mailbox_key
from ..core.extensions import db
from ..core.models import ConsentAction, Magnet, Subscriber, SubscriberStatus
from ..core.nudges import nudge_committed, queue_nudge
from ..people import consent
from ..people.enrolments import enrol, enrolment
from ..sending.context import Context
from ..sending.schedule import (
    recent_confirmation,
    resume_drip,
    schedule_confirmation,
    schedule_resend,
    schedule_step,
)
from ..sending.suppression import is_suppressed
from . import newcomer
from .confirm import reinstate
from .validation import SignupInput

log = logging.getLogger(__name__)
OPTED_OUT = (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED)


def sign_up(
    ctx: Context,
    data: SignupInput,
    meta: consent.RequestMeta,
    *,
    proven: bool = False,
    magnet_id: int | None = None,
) -> list[int]:
    """Record the signup for one magnet (None: the default); the emails to send now go to
    the worker after the commit (their ids are returned too). `proven`: it came through a
    link emailed to the address (the resubscribe button)."""
    if data.honeypot:
        return []
    made = _newcomer(ctx, data, meta, magnet_id)
    subscriber_id, ids = made or _full_path(ctx, data, meta, proven, magnet_id)
    metrics.signed_up()
    log.info("signup of subscriber %s", subscriber_id, extra={"subscriber_id": subscriber_id})
    return ids


def _full_path(
    ctx: Context,
    data: SignupInput,
    meta: consent.RequestMeta,
    proven: bool,
    magnet_id: int | None,
) -> tuple[int, list[int]]:
    """Through the session, knowing every rule about people seen before; nudged after the
    commit."""
    try:
        return _committed(ctx, data, meta, proven, magnet_id)
    except IntegrityError:
        # Two signups of one new address at once: the loser finds the winner's row (the
        # rollback dropped what the first try queued).
        db.session.rollback()
        return _committed(ctx, data, meta, proven, magnet_id)


def _committed(
    ctx: Context,
    data: SignupInput,
    meta: consent.RequestMeta,
    proven: bool,
    magnet_id: int | None,
) -> tuple[int, list[int]]:
    """One try of the full path, its nudge queued for after its commit."""
    subscriber_id, ids = _sign_up(ctx, data, meta, proven, magnet_id)
    queue_nudge(ids)
    db.session.commit()
    return subscriber_id, ids


def _why(exc: IntegrityError) -> str:
    """The constraint a refused statement broke, as the driver names it."""
    diag = getattr(exc.orig, "diag", None)
    return getattr(diag, "constraint_name", None) or type(exc.orig).__name__


def _newcomer(
    ctx: Context, data: SignupInput, meta: consent.RequestMeta, magnet_id: int | None
) -> tuple[int, list[int]] | None:
    """A stranger to the list, written and committed in one statement where that applies
    (newcomer.py), and nudged; None: the full path decides."""
    fast = ctx.for_magnet(magnet_id)
    if not newcomer.applies(fast):
        return None
    try:
        made = newcomer.insert_newcomer(fast, data, meta, ctx.now())
    except IntegrityError as exc:  # it wrote nothing: the full path decides, as for anyone
        log.warning("the newcomer's statement was refused (%s); taking the full path", _why(exc))
        return None
    if made is None:
        return None
    nudge_committed([made[1]])  # its one statement committed as it ran: no session to commit
    return made[0], [made[1]]


def _magnet(magnet_id: int | None) -> Magnet:
    if magnet_id is None:
        return default_magnet()
    return db.session.get_one(Magnet, magnet_id)


def _sign_up(
    ctx: Context,
    data: SignupInput,
    meta: consent.RequestMeta,
    proven: bool,
    magnet_id: int | None,
) -> tuple[int, list[int]]:
    """The subscriber's id, and the emails to send now."""
    now = ctx.now()
    magnet = _magnet(magnet_id)
    ctx = ctx.for_magnet(magnet.id)  # its consent text, its guide, its sequence
    subscriber = db.session.scalar(
        select(Subscriber).where(Subscriber.email_key == email_key(data.email)).with_for_update()
    )
    if subscriber is not None:
        return subscriber.id, _again(ctx, subscriber, magnet, data, meta, proven)
    # A stranger may type any address: one that opted out comes back only by confirming.
    confirm_first = ctx.settings.double_opt_in or _opted_out(ctx, data.email)
    subscriber = Subscriber(
        email=data.email,
        email_key=email_key(data.email),
        mailbox_key=mailbox_key(data.email),
        first_name=data.first_name,
        time_zone=data.time_zone,
        status=SubscriberStatus.PENDING if confirm_first else SubscriberStatus.ACTIVE,
        created_at=now,
        updated_at=now,
    )
    db.session.add(subscriber)
    db.session.flush()
    entry = consent.record(
        subscriber, ConsentAction.CONSENT, ctx.content.consent, meta, now, magnet.id
    )
    enrol(ctx, subscriber, magnet, entry)
    if confirm_first:
        return subscriber.id, _confirm_again(ctx, subscriber, magnet)
    return subscriber.id, [schedule_step(ctx, subscriber, ctx.content.first, now).id]


def _opted_out(ctx: Context, address: str) -> bool:
    """Suppressed (unsubscribed, bounced, complained, forgotten), or another spelling of the
    same mailbox is: `ann+1@` is no way around the unsubscribe of `ann@`."""
    siblings = db.session.execute(
        select(Subscriber.email, Subscriber.status).where(
            Subscriber.mailbox_key == mailbox_key(address)
        )
    ).all()
    if any(status in OPTED_OUT for _email, status in siblings):
        return True
    return any(is_suppressed(ctx, known) for known in {address, *(email for email, _ in siblings)})


def _again(
    ctx: Context,
    subscriber: Subscriber,
    magnet: Magnet,
    data: SignupInput,
    meta: consent.RequestMeta,
    proven: bool,
) -> list[int]:
    """A known address signs up (again, or for another magnet): what goes out now depends
    on where they stand. Nobody is renamed here: anyone can type anyone's address."""
    entry = consent.record(
        subscriber, ConsentAction.CONSENT, ctx.content.consent, meta, ctx.now(), magnet.id
    )
    before = enrolment(subscriber, magnet)
    stopped = before is not None and before.stopped_at is not None
    enrol(ctx, subscriber, magnet, entry)
    opted_out = subscriber.status in OPTED_OUT or is_suppressed(ctx, subscriber.email)
    if subscriber.status == SubscriberStatus.ACTIVE and not opted_out:
        return _start_or_resend(ctx, subscriber, magnet, before is None, stopped)
    if opted_out and proven and not ctx.settings.double_opt_in:
        return reinstate(ctx, subscriber, magnet)
    # Pending, or coming back after an opt-out: only the confirmation link lets them in.
    subscriber.status = SubscriberStatus.PENDING
    _keep_aside(subscriber, data)
    return _confirm_again(ctx, subscriber, magnet)


def _start_or_resend(
    ctx: Context, subscriber: Subscriber, magnet: Magnet, new: bool, stopped: bool
) -> list[int]:
    """A magnet new to this person starts its sequence with its guide; one taken before
    sends its guide again (at most once a day) and its sequence goes on where it is (where
    it stopped, if they had stopped it)."""
    if new:
        return [schedule_step(ctx, subscriber, ctx.content.first, ctx.now()).id]
    resumed = resume_drip(ctx, subscriber) if stopped else None
    if resumed is not None and resumed.step_id == ctx.content.first.id:
        return [resumed.id]
    resend = schedule_resend(ctx, subscriber)
    return [resend.id] if resend else []


def _keep_aside(subscriber: Subscriber, data: SignupInput) -> None:
    """The name and zone this signup asks for, applied when the confirmation link is followed."""
    if data.first_name:
        changed = data.first_name != subscriber.first_name
        subscriber.requested_first_name = data.first_name if changed else None
    if data.time_zone:
        changed = data.time_zone != subscriber.time_zone
        subscriber.requested_time_zone = data.time_zone if changed else None


def _confirm_again(ctx: Context, subscriber: Subscriber, magnet: Magnet) -> list[int]:
    """At most one confirmation email a day per mailbox, however often the form is sent
    and however the address is spelt (list bombing). Confirming starts every magnet taken
    meanwhile (capture/confirm.py), this one included."""
    if recent_confirmation(subscriber, ctx.now()):
        return []
    return [schedule_confirmation(ctx, subscriber).id]

"""Sending scheduled emails: claim (N at a time), re-check, render, send, record, schedule
the next. Per email: one re-read of its row before the send and one record after it; the
subscriber's status, the suppression list and EMAIL_MIN_GAP are checked once per batch."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypedDict, TypeVar

from jinja2 import TemplateError
from sqlalchemy import Connection, func, insert, literal, select, update
from sqlalchemy.exc import OperationalError

from ..content.broadcast_body import BroadcastText, render_broadcast
from ..content.published import NoContent
from ..content.rendering import RenderedEmail
from ..content.sequence import Step
from ..core import metrics
from ..core.driver_sql import Sent
from ..core.extensions import db
from ..core.logs import mask_addresses
from ..core.models import (
    Broadcast,
    DeliveryAttempt,
    EmailStatus,
    Outcome,
    Purpose,
    ScheduledEmail,
    Subscriber,
    SubscriberStatus,
    Suppression,
    SuppressionReason,
)
from . import send_rate, sent_record, throttling
from .batch_claims import claim_batch, extend, unclaim
from .broadcasts import stop_if_refused
from .compose import compose, context, render_for
from .context import Context
from .enrolment_stops import stop_enrolments
from .schedule import cancel_open, schedule_next, zone_of
from .spacing import held_until_each, hold
from .suppression import address_hashes, suppress
from .transport import DeliveryError, SendResult

log = logging.getLogger(__name__)
RETRY_FOR = timedelta(days=2)
BACKOFF_BASE = 60  # seconds before the first retry; doubles each attempt
BACKOFF_CAP = 6 * 3600
# Recording a send the server accepted: a send left unrecorded goes again once its lease
# runs out, so keep trying (the database comes back, or the process dies) for this long.
RECORD_FOR = 600  # seconds
RECORD_PAUSE = 0.5  # seconds before the second try, doubling up to RECORD_PAUSE_MAX
RECORD_PAUSE_MAX = 1.0
CLAIM_RAN_OUT = "claim ran out"  # a batch-claimed row left too long: not ours to send now
Read = sent_record.Read
DripStates = dict[tuple[int, int | None], dict[str, str]]  # (person, magnet): step -> status
Loaded = TypeVar("Loaded", ScheduledEmail, Subscriber, Broadcast)


def claim(email_id: int, now: datetime, lease: float) -> bool:
    """Take the row for this worker (batch_claims.claim_batch of one row)."""
    return bool(claim_batch([email_id], now, lease)[0])


def deliver(ctx: Context, email_id: int) -> Outcome:
    """Deliver one scheduled email if it is due and still wanted; return what happened.
    Rendered and followed by its next step from one content snapshot, the context's."""
    now = ctx.now()
    claimed, held = claim_batch([email_id], now, ctx.settings.send_lease)
    if not claimed:
        return Outcome.NOT_CLAIMED
    return Claimed.check(ctx, claimed, held).send(email_id)


def deliver_claimed(ctx: Context, email_id: int, now: datetime, held: datetime) -> Outcome:
    """deliver() after the claim: for a row claimed (alone or in a batch) with the lease
    `held`, sent only while that claim is still ours with half of it left."""
    return Claimed.check(ctx, [email_id], held).send(email_id)


def _wanted_status(email: ScheduledEmail) -> SubscriberStatus:
    return SubscriberStatus.PENDING if email.purpose == Purpose.CONFIRM else SubscriberStatus.ACTIVE


@dataclass
class Claimed:
    """Rows this worker claimed together with one lease (`held`), checked as one: loaded
    with their subscribers in one query, the suppression list read once, EMAIL_MIN_GAP
    decided once under the subscribers' row locks. Every path that stops someone's mail
    (unsubscribe, bounce, complaint, erasure) cancels or deletes their open rows, so the
    re-read of each row just before its send (`_recheck`) catches what changed since."""

    ctx: Context
    held: datetime
    ready: dict[int, tuple[ScheduledEmail, Subscriber]] = field(default_factory=dict)
    settled: dict[int, Outcome] = field(default_factory=dict)  # done at the check
    broadcasts: dict[int, Broadcast] = field(default_factory=dict)  # as the batch began
    # A row's re-read, made in the previous row's record transaction (no query of its own).
    fresh: dict[int, Read | None] = field(default_factory=dict)
    # PostgreSQL: the batch's people's drip rows as the check read them, for the next step
    # of each sent row (None: not read; the record takes the session's path), and the
    # batch's autocommit connection for its one-statement records.
    drips: DripStates | None = None
    conn: Connection | None = None
    pending: Recording | None = None  # the last send's record, sent and not yet answered

    @classmethod
    def check(cls, ctx: Context, ids: list[int], held: datetime) -> Claimed:
        batch = cls(ctx, held)
        if not ids:
            return batch
        found = list(
            db.session.execute(
                select(ScheduledEmail, Subscriber, Broadcast)
                .join(Subscriber, Subscriber.id == ScheduledEmail.subscriber_id)
                .outerjoin(Broadcast, Broadcast.id == ScheduledEmail.broadcast_id)
                .where(ScheduledEmail.id.in_(ids))
            )
        )
        found.sort(key=lambda row: ids.index(row[0].id))  # sent in the order given
        batch.settled = dict.fromkeys(ids, Outcome.CANCELLED)  # erased since the claim
        suppressed = _suppressed(ctx, [row[1].email for row in found])
        candidates: list[ScheduledEmail] = []
        for email, subscriber, broadcast in found:
            why = _why_not(email, subscriber, suppressed)
            if why is not None:
                batch.settled[email.id] = _close(
                    email, EmailStatus.CANCELLED, Outcome.CANCELLED, why
                )
                continue
            try:
                ctx.for_magnet(email.magnet_id)  # EMAIL_MIN_GAP reads its magnet's content
            except NoContent as exc:
                batch.settled[email.id] = _unrenderable(email, exc)
                continue
            if broadcast is not None:
                batch.broadcasts[broadcast.id] = broadcast
            candidates.append(email)
            batch.ready[email.id] = (email, subscriber)
        batch._space(candidates)
        if db.session.get_bind().dialect.name == "postgresql":
            batch.drips = _drip_states([email for email, _ in batch.ready.values()])
        # Kept as loaded: a commit would expire them, and reading them again costs a query.
        for email, subscriber in batch.ready.values():
            del batch.settled[email.id]
            db.session.expunge(email)
            db.session.expunge(subscriber)
        for broadcast in batch.broadcasts.values():
            db.session.expunge(broadcast)
        db.session.commit()  # the holds and cancellations; the subscribers' locks end here
        return batch

    def _space(self, emails: list[ScheduledEmail]) -> None:
        """EMAIL_MIN_GAP: give back (no attempt counted) what must wait for another email."""
        for email_id, until in held_until_each(self.ctx, emails).items():
            email = self.ready.pop(email_id)[0]
            hold(email, until)
            self.settled[email_id] = Outcome.SPACED

    def __contains__(self, email_id: int) -> bool:
        return email_id in self.ready

    def left(self) -> set[int]:
        return set(self.ready)

    def keep(self, now: datetime) -> None:
        """With less than half the lease left, extend it for the rows not yet sent (those
        another worker has claimed since, or whose broadcast was paused, are dropped)."""
        lease = self.ctx.settings.send_lease
        if not self.ready or self.held - now >= timedelta(seconds=lease / 2):
            return
        self.settle()  # its re-read of the next row is of the old lease, as the others
        kept, self.held = extend(list(self.ready), self.held, now, lease)
        self.fresh.clear()  # read under the old lease
        for email_id in set(self.ready) - kept:
            del self.ready[email_id]
            self.settled[email_id] = Outcome.NOT_CLAIMED

    def give_back(self) -> None:
        """Put back the rows not sent (the worker is stopping)."""
        unclaim(set(self.ready), self.held)
        self.ready.clear()
        self.close()

    def link(self) -> Connection:
        if self.conn is None:
            self.conn = sent_record.link()
        return self.conn

    def close(self) -> None:
        """Back to the pool: the batch's last row is done (or it failed); a record on its
        way is answered first."""
        try:
            self.settle()
        finally:
            if self.conn is not None:
                self.conn.close()
                self.conn = None

    def settle(self) -> None:
        """Read the answer to the last send's record (sent while this worker rendered the
        next row). Called before anything else is sent: at most one accepted send is ever
        unrecorded. A connection lost meanwhile: the record is tried again as _sent does."""
        pending, self.pending = self.pending, None
        if pending is None:
            return
        try:
            recorded, read = sent_record.answer(pending.sent)
        except OperationalError:
            if self.conn is not None:
                self.conn.invalidate()  # the retries check out a fresh connection
                self.conn.close()
                self.conn = None
            _, read = _sent(
                self, pending.ctx, pending.about, pending.result, pending.subscriber, pending.peek
            )
        else:
            _recorded(self, pending.ctx, pending.about, pending.subscriber, pending.step, recorded)
        if pending.peek is not None:
            self.fresh[pending.peek] = read

    def send(self, email_id: int) -> Outcome:
        """Render, re-check, send and record one row of the batch."""
        try:
            return self._send(email_id)
        except BaseException:
            self.close()
            raise
        finally:
            if not self.ready:
                self.close()

    def _send(self, email_id: int) -> Outcome:
        if email_id not in self.ready:
            return self.settled.get(email_id, Outcome.NOT_CLAIMED)
        email, subscriber = self.ready.pop(email_id)
        rendered: RenderedEmail | None
        try:
            ctx = self.ctx.for_magnet(email.magnet_id)  # its own magnet's content, one snapshot
            broadcast = self.broadcasts.get(email.broadcast_id or 0)
            if broadcast is not None:
                text = BroadcastText(
                    broadcast.subject, broadcast.body_md, broadcast.body_html, broadcast.body_txt
                )
                variables = context(ctx, subscriber, "broadcast")
                rendered = render_broadcast(text, variables, ctx.content.templates)
            else:
                rendered = render_for(ctx, email, subscriber)
        except (TemplateError, NoContent) as exc:  # the sandbox's SecurityError among them
            outcome = _unrenderable(_attached(email), exc)
            db.session.commit()
            return outcome
        if rendered is None:  # its step was removed from the sequence: move on to the next
            schedule_next(ctx, subscriber, email.step_id, ctx.now())
            return _finish(_attached(email), EmailStatus.CANCELLED, Outcome.SKIPPED)
        msg, sender, recipient = compose(ctx, email, subscriber, rendered)
        msg.as_bytes(getattr(ctx.transport, "dkim_key", None))  # and signed: CPU work too
        self.settle()  # the row before's record: ran on the server while this one rendered
        paced = _wait_for_turn(ctx, email, broadcast)
        read = self.fresh.pop(email_id, ()) if not paced else ()  # a wait makes it stale
        if read == () and self.drips is not None:  # PostgreSQL: one round trip, no BEGIN
            read = sent_record.read(self.link(), email_id)
        unwanted = _recheck(ctx, email, self.held, read)
        if unwanted == CLAIM_RAN_OUT:
            return Outcome.NOT_CLAIMED  # the row stays as it is: its lease brings it back
        if unwanted is not None:
            return _finish(_attached(email), EmailStatus.CANCELLED, Outcome.CANCELLED, unwanted)
        try:
            result = ctx.transport.send(msg, sender, recipient, step=email.step_id)
        except DeliveryError as exc:
            outcome = _failed(ctx, _attached(email), _attached(subscriber), exc)
            if broadcast is not None:  # a throttling reply changed its pace: read it again
                self.broadcasts[broadcast.id] = fresh = _attached(broadcast)
                db.session.expunge(fresh)
            return outcome
        return self._record_accepted(ctx, _about(email), result, subscriber)

    def _record_accepted(
        self, ctx: Context, about: About, result: SendResult, sub: Subscriber
    ) -> Outcome:
        """Record an accepted send, the batch's next row re-read with it. On PostgreSQL's
        one-statement path the statement is sent and its answer read by settle() once the
        next row is rendered; elsewhere (SQLite, a step to bring back) it is waited for."""
        peek = next(iter(self.ready), None)
        step = self.follows(ctx, about)
        if self.drips is not None and not isinstance(step, str):  # REVIVE is the one str
            values = _fast_values(ctx, about, result, sub, step, ctx.now())
            try:
                sent = sent_record.send(self.link(), values, peek)
            except OperationalError:
                pass  # not sent: _sent below tries again on fresh connections
            else:
                self.pending = Recording(ctx, about, result, sub, peek, step, sent)
                return Outcome.SENT
        outcome, read = _sent(self, ctx, about, result, sub, peek)
        if peek is not None:
            self.fresh[peek] = read
        return outcome

    def follows(self, ctx: Context, about: About) -> Step | str | None:
        """The drip step to schedule once this row is recorded (None for other rows)."""
        if about["purpose"] != Purpose.DRIP:
            return None
        states = None
        if self.drips is not None:
            states = self.drips.get((about["subscriber_id"], ctx.magnet_id), {})
        return sent_record.next_step(ctx.content, about["step"], states)


def _drip_states(emails: list[ScheduledEmail]) -> DripStates:
    """The drip rows of the people of the batch's drip rows, in one query of four columns."""
    people = {email.subscriber_id for email in emails if email.purpose == Purpose.DRIP}
    found: DripStates = {}
    if not people:
        return found
    rows = db.session.execute(
        select(
            ScheduledEmail.subscriber_id,
            ScheduledEmail.magnet_id,
            ScheduledEmail.step_id,
            ScheduledEmail.status,
        ).where(ScheduledEmail.subscriber_id.in_(people), ScheduledEmail.purpose == Purpose.DRIP)
    )
    for subscriber_id, magnet_id, step_id, status in rows:
        found.setdefault((subscriber_id, magnet_id), {})[step_id] = status
    return found


def _attached(obj: Loaded) -> Loaded:
    """A row of the batch back in the session, read again (the rarer paths change it)."""
    return db.session.get_one(type(obj), obj.id)


def _suppressed(ctx: Context, addresses: list[str]) -> set[str]:
    """Which of these addresses are on the suppression list, in one query."""
    hashes = {digest: address for address in addresses for digest in address_hashes(ctx, address)}
    if not hashes:
        return set()
    found = db.session.scalars(
        select(Suppression.email_hash).where(Suppression.email_hash.in_(list(hashes)))
    )
    return {hashes[digest] for digest in found}


def _why_not(email: ScheduledEmail, subscriber: Subscriber, suppressed: set[str]) -> str | None:
    """Why a claimed row must not go (a broadcast row keeps it as its outcome). A
    confirmation goes to a suppressed address: it is the one way back after an opt-out."""
    if subscriber.status != _wanted_status(email):
        return f"subscriber {subscriber.status}"
    if subscriber.email in suppressed and email.purpose != Purpose.CONFIRM:
        return "address suppressed"
    return None


def _read(email_id: int) -> Read | None:
    row = db.session.execute(
        select(ScheduledEmail.status, ScheduledEmail.lease_until).where(
            ScheduledEmail.id == email_id
        )
    ).first()
    return (row[0], row[1]) if row else None


def _recheck(
    ctx: Context, email: ScheduledEmail, held: datetime, read: tuple | None = ()
) -> str | None:
    """One fresh read just before SMTP (`read`, when the previous row's record made it,
    with nothing but rendering since): the row still claimed by us with half the lease left
    (or another worker may claim it once it runs out), not cancelled since the batch was
    checked (an unsubscribe or a webhook since then wins), not erased."""
    if read == ():
        read = _read(email.id)
        db.session.commit()  # read-only: no transaction held open across the network call
    row = read
    if row is None:
        return "erased"
    if row[0] != EmailStatus.SENDING:
        return f"no longer claimed ({row[0]})"
    if row[1] != held or held - ctx.now() < timedelta(seconds=ctx.settings.send_lease / 2):
        return CLAIM_RAN_OUT
    return None


def _unrenderable(email: ScheduledEmail, exc: Exception) -> Outcome:
    """A template that cannot render (or a magnet without content) fails that email, not
    the worker: it would fail the same way on every try. The caller commits."""
    email.last_error = f"cannot render: {type(exc).__name__}: {exc}"[:2000]
    log.error("email %s cannot be rendered: %s", email.id, email.last_error, extra=_about(email))
    metrics.send_failed(Outcome.FAILED)
    return _close(email, EmailStatus.FAILED, Outcome.FAILED)


def _close(
    email: ScheduledEmail, status: EmailStatus, outcome: Outcome, why: str | None = None
) -> Outcome:
    """The row's end, in the caller's transaction."""
    email.status = status
    email.lease_until = None
    if why is not None:
        email.last_error = why  # a skipped row says why it was skipped
    return outcome


def _finish(
    email: ScheduledEmail, status: EmailStatus, outcome: Outcome, why: str | None = None
) -> Outcome:
    _close(email, status, outcome, why)
    db.session.commit()
    return outcome


def _wait_for_turn(ctx: Context, email: ScheduledEmail, broadcast: Broadcast | None) -> bool:
    """Pace the send: SEND_RATE for every email, a broadcast's own (or throttled) rate for
    its rows; whether it was paced. No transaction stays open while waiting."""
    limits: dict[str, float] = {}
    if ctx.settings.send_rate is not None:
        limits[send_rate.ALL_MAIL] = ctx.settings.send_rate
    if email.broadcast_id is not None and broadcast is not None:
        own = throttling.current_rate(broadcast, None)
        if own is not None:
            limits[f"broadcast:{email.broadcast_id}"] = own
    if not limits:
        return False
    db.session.commit()
    send_rate.wait_for_turn(send_rate.bucket_for(ctx.settings.redis_url), limits)
    return True


class About(TypedDict):
    """The ids a log line about one email carries (logs.FIELDS), never the address."""

    subscriber_id: int
    email_id: int
    step: str
    message_id: str
    purpose: str  # not a log field (logs.FIELDS leaves it out): recording needs it


def _about(email: ScheduledEmail) -> About:
    return {
        "subscriber_id": email.subscriber_id,
        "email_id": email.id,
        "step": email.step_id,
        "message_id": email.message_id,
        "purpose": email.purpose,
    }


def _log(
    email: ScheduledEmail, outcome: Outcome, code: int | None, reply: str, now: datetime
) -> None:
    db.session.add(
        DeliveryAttempt(
            email_id=email.id,
            message_id=email.message_id,
            outcome=outcome,
            smtp_code=code,
            smtp_reply=reply[:2000],
            created_at=now,
        )
    )


def _sent(
    batch: Claimed,
    ctx: Context,
    about: About,
    result: SendResult,
    subscriber: Subscriber,
    peek: int | None,
) -> tuple[Outcome, Read | None]:
    """Record an accepted send. The server has the message now: if the database connection
    drops or the database is unreachable, keep trying on fresh connections rather than
    leave the row to be sent again when its lease runs out."""
    give_up = time.monotonic() + RECORD_FOR
    pause = RECORD_PAUSE
    while True:
        try:
            return _record_sent(batch, ctx, about, result, subscriber, peek)
        except OperationalError as exc:
            db.session.rollback()
            if batch.conn is not None:
                batch.conn.invalidate()  # the next try checks out a fresh connection
                batch.close()
            if time.monotonic() + pause > give_up:
                raise
            reason = str(exc.orig or exc).strip().splitlines()[0]
            log.warning(
                "could not record email %s as sent (%s); trying again in %.1fs",
                about["email_id"],
                reason,
                pause,
                extra=about,
            )
            time.sleep(pause)
            pause = min(pause * 2, RECORD_PAUSE_MAX)


def _record_sent(
    batch: Claimed,
    ctx: Context,
    about: About,
    result: SendResult,
    subscriber: Subscriber,
    peek: int | None,
) -> tuple[Outcome, Read | None]:
    """Record the send (and its next step) in one transaction, with the re-read of the
    batch's next row `peek` riding along; one commit, per sent row, before the next send.
    On PostgreSQL that is one statement (sent_record), unless the next step has a row
    already: bringing that back takes the session's path, as on SQLite."""
    now = ctx.now()
    step = batch.follows(ctx, about)
    if batch.drips is not None and not isinstance(step, str):  # REVIVE is the one str
        values = _fast_values(ctx, about, result, subscriber, step, now)
        recorded, read = sent_record.record(batch.link(), values, peek)
        _recorded(batch, ctx, about, subscriber, step, recorded)
    else:
        read = _record_in_session(ctx, about, result, subscriber, peek, now)
        _recorded(batch, ctx, about, subscriber, None, False)
    return Outcome.SENT, read


@dataclass(frozen=True)
class Recording:
    """A send's record on its way (sent_record.send), with what settle() needs after."""

    ctx: Context
    about: About
    result: SendResult
    subscriber: Subscriber
    peek: int | None
    step: Step | None
    sent: Sent


def _fast_values(
    ctx: Context,
    about: About,
    result: SendResult,
    subscriber: Subscriber,
    step: Step | None,
    now: datetime,
) -> dict[str, Any]:
    """The values of sent_record's statement for this send (and its next step, if any)."""
    due = None if step is None else step.due_after(now, zone_of(subscriber, ctx.content))
    return {
        "row_id": about["email_id"],
        "now": now,
        "its_message_id": about["message_id"],
        "code": result.code,
        "reply": result.reply[:2000],
        **sent_record.following(ctx.magnet_id, step, due, ctx.sender),
    }


def _recorded(
    batch: Claimed,
    ctx: Context,
    about: About,
    subscriber: Subscriber,
    step: Step | None,
    recorded: bool,
) -> None:
    """After the record's commit: the batch's view of this person's drip rows, the count,
    and the log line (the evidence that the send is in the database from then on)."""
    if recorded and step is not None and batch.drips is not None:  # a later row of theirs
        states = batch.drips.setdefault((subscriber.id, ctx.magnet_id), {})
        states.update({about["step"]: EmailStatus.SENT, step.id: EmailStatus.PENDING})
    metrics.email_sent(about["step"])
    log.info("sent email %s (step %s)", about["email_id"], about["step"], extra=about)


def _record_in_session(
    ctx: Context,
    about: About,
    result: SendResult,
    subscriber: Subscriber,
    peek: int | None,
    now: datetime,
) -> Read | None:
    """The record through the session: SQLite's, and PostgreSQL's when the next step has a
    row to bring back (rare: a cancelled or failed step)."""
    recorded, read = _record(about, result, now, peek)
    if recorded and about["purpose"] == Purpose.DRIP:
        schedule_next(ctx, subscriber, about["step"], now)
    if peek is not None and read == ():
        read = _read(peek)
    db.session.commit()
    return read or None


def _record(
    about: About, result: SendResult, now: datetime, peek: int | None
) -> tuple[bool, Read | tuple[()] | None]:
    """The row marked sent and the attempt logged; False if an earlier try's commit landed
    and only its answer was lost. One statement on PostgreSQL, which also re-reads `peek`
    (else `()`: not read) and makes this transaction's commit not wait for the disk: a
    durable commit costs more here than the whole rest of a send. A worker crash loses
    nothing (the server has the commit); a database crash can lose the last sent-records
    (3 x wal_writer_delay), whose rows go again: the after-accept window of the README's
    Reliability section. The claim before the send stays durable."""
    sent = (
        update(ScheduledEmail)
        .where(ScheduledEmail.id == about["email_id"], ScheduledEmail.status != EmailStatus.SENT)
        .values(status=EmailStatus.SENT, sent_at=now, lease_until=None, last_error=None)
        .returning(ScheduledEmail.id)
    )
    attempt = {
        "message_id": about["message_id"],
        "outcome": Outcome.SENT,
        "smtp_code": result.code,
        "smtp_reply": result.reply[:2000],
        "created_at": now,
    }
    if db.session.get_bind().dialect.name != "postgresql":
        if db.session.execute(sent.execution_options(synchronize_session=False)).first() is None:
            return False, ()
        db.session.execute(insert(DeliveryAttempt).values(email_id=about["email_id"], **attempt))
        return True, ()
    done = sent.cte("sent")
    values = [done.c.id, *(literal(value) for value in attempt.values())]
    of_peek = ScheduledEmail.id == (peek or 0)
    logged = db.session.execute(
        insert(DeliveryAttempt)
        .from_select(
            ["email_id", *attempt],
            select(*values).where(func.set_config("synchronous_commit", "off", True) == "off"),
        )
        .returning(
            DeliveryAttempt.id,
            select(ScheduledEmail.status).where(of_peek).scalar_subquery(),
            select(ScheduledEmail.lease_until).where(of_peek).scalar_subquery(),
        )
    ).first()
    if logged is None:
        return False, ()
    if peek is None:
        return True, None
    return True, ((logged[1], logged[2]) if logged[1] is not None else None)


def _first_try(email: ScheduledEmail, now: datetime) -> datetime:
    """When this email was first tried since it was scheduled: the retry window runs from
    there (a follow-up's row is written when the step before it goes, days ahead)."""
    first = db.session.scalar(
        select(func.min(DeliveryAttempt.created_at)).where(
            DeliveryAttempt.email_id == email.id, DeliveryAttempt.created_at >= email.anchor_at
        )
    )
    return first or now


def _failed(
    ctx: Context, email: ScheduledEmail, subscriber: Subscriber, exc: DeliveryError
) -> Outcome:
    now = ctx.now()
    email.lease_until = None
    email.last_error = str(exc)[:2000]
    # SMTP replies often quote the recipient: the log gets the reply with the address masked.
    reply = mask_addresses(str(exc))
    throttled = email.broadcast_id is not None and throttling.is_throttling(exc)
    if exc.kind == DeliveryError.TRANSIENT and now - _first_try(email, now) < RETRY_FOR:
        _log(email, Outcome.DEFERRED, exc.code, exc.reply, now)
        email.status = EmailStatus.PENDING
        email.due_at = now + backoff(email.attempts)
        if throttled and email.broadcast_id is not None:
            # The server asks the whole send to slow down: this email waits a moment, not
            # an exponential backoff, and every worker's pace for the broadcast halves.
            throttling.slow_down(email.broadcast_id, ctx.settings.send_rate, now)
            email.due_at = now + throttling.PAUSE
        db.session.commit()
        metrics.send_failed(Outcome.DEFERRED)
        log.warning(
            "deferred email %s (attempt %s): %s",
            email.id,
            email.attempts,
            reply,
            extra=_about(email),
        )
        return Outcome.DEFERRED
    email.status = EmailStatus.FAILED
    if exc.kind == DeliveryError.BOUNCE:
        _log(email, Outcome.BOUNCED, exc.code, exc.reply, now)
        subscriber.status = SubscriberStatus.BOUNCED
        cancel_open(subscriber.id)
        stop_enrolments(subscriber.id, "bounced", now)
        suppress(ctx, subscriber.email, SuppressionReason.BOUNCED)
        db.session.commit()
        metrics.send_failed(Outcome.BOUNCED)
        log.warning(
            "bounced email %s, subscriber %s suppressed: %s",
            email.id,
            subscriber.id,
            reply,
            extra=_about(email),
        )
        return Outcome.BOUNCED
    _log(email, Outcome.FAILED, exc.code, exc.reply, now)
    if email.broadcast_id is not None:
        db.session.flush()
        stop_if_refused(email.broadcast_id, reply)
    db.session.commit()
    metrics.send_failed(Outcome.FAILED)
    log.error(
        "email %s failed, the server refused the sender or message: %s",
        email.id,
        reply,
        extra=_about(email),
    )
    return Outcome.FAILED


def backoff(attempts: int) -> timedelta:
    """Exponential, capped, with jitter so a recovered server is not hit all at once."""
    seconds = min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_CAP)
    return timedelta(seconds=seconds * random.uniform(0.8, 1.2))

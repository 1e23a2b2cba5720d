"""SMTP throttling replies (421, 454, enhanced 4.7.x) slow the whole broadcast down: its
effective rate halves, the email waits a moment, and the rate climbs back once the server
has been quiet for a while. Nothing is counted as failed for it."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from sqlalchemy import func, select

from ..core.extensions import db
from ..core.models import Broadcast, BroadcastStatus, EmailStatus, ScheduledEmail
from ..core.rates import describe, parse_rate
from .transport import DeliveryError

log = logging.getLogger(__name__)
THROTTLE_CODES = frozenset({421, 454})
POLICY_STATUS = re.compile(r"\b4\.7\.\d{1,3}\b")  # RFC 3463: security or policy status
PAUSE = timedelta(seconds=5)  # before the throttled email is tried again
MIN_RATE = 0.2  # per second: slowed, never stopped
QUIET = timedelta(seconds=60)  # without a throttling reply before the rate climbs again
CLIMB = 1.5
UNLIMITED = 1000.0  # per second: a climb past this, with no limit set, lifts the limit
OBSERVED_WINDOW = timedelta(seconds=10)


def is_throttling(exc: DeliveryError) -> bool:
    if exc.kind != DeliveryError.TRANSIENT:
        return False
    return exc.code in THROTTLE_CODES or POLICY_STATUS.search(exc.reply or "") is not None


def configured_rate(broadcast: Broadcast, send_rate: float | None) -> float | None:
    """Per second: the lower of the broadcast's own limit and SEND_RATE; None: no limit."""
    own = parse_rate(broadcast.rate_limit) if broadcast.rate_limit else None
    limits = [r for r in (own, send_rate) if r is not None]
    return min(limits) if limits else None


def current_rate(broadcast: Broadcast, send_rate: float | None) -> float | None:
    """What its sends are paced at now: lowered by throttling, or as configured."""
    configured = configured_rate(broadcast, send_rate)
    if broadcast.effective_rate is None:
        return configured
    return min(broadcast.effective_rate, configured or broadcast.effective_rate)


def _observed(broadcast_id: int, now: datetime) -> float:
    since = now - OBSERVED_WINDOW
    sent = db.session.scalar(
        select(func.count(ScheduledEmail.id)).where(
            ScheduledEmail.broadcast_id == broadcast_id,
            ScheduledEmail.status == EmailStatus.SENT,
            ScheduledEmail.sent_at > since,
        )
    )
    return (sent or 0) / OBSERVED_WINDOW.total_seconds()


def slow_down(broadcast_id: int, send_rate: float | None, now: datetime) -> float:
    """Halve the broadcast's pace (from what it is sending at now); the new rate."""
    broadcast = db.session.get_one(Broadcast, broadcast_id)
    base = current_rate(broadcast, send_rate) or _observed(broadcast_id, now) or 1.0
    if broadcast.throttled_at is not None and now - broadcast.throttled_at < PAUSE:
        return base  # the same burst of replies: one halving per pause
    lowered = max(MIN_RATE, base / 2)
    broadcast.effective_rate = lowered
    broadcast.throttled_at = now
    log.warning(
        "broadcast %s: the mail server asks us to slow down; now %s",
        broadcast_id,
        describe(lowered),
    )
    return lowered


def recover(send_rate: float | None, now: datetime) -> None:
    """Let throttled broadcasts climb back towards their configured pace (a scheduler pass)."""
    lowered = db.session.scalars(
        select(Broadcast).where(
            Broadcast.status == BroadcastStatus.SENDING,
            Broadcast.effective_rate.is_not(None),
            Broadcast.throttled_at < now - QUIET,
        )
    )
    for broadcast in lowered:
        configured = configured_rate(broadcast, send_rate)
        climbed = (broadcast.effective_rate or MIN_RATE) * CLIMB
        if climbed >= (configured or UNLIMITED):
            broadcast.effective_rate = None
        else:
            broadcast.effective_rate = climbed
        broadcast.throttled_at = now  # the next climb waits for another quiet spell

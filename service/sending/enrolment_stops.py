"""Every running enrolment of a person marked stopped, with the reason: the one writer for an
unsubscribe, a bounce and a complaint (here, below people/, because delivery's bounce needs it)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update

from ..core.extensions import db
from ..core.models import Enrolment


def stop_enrolments(subscriber_id: int, reason: str, now: datetime) -> None:
    """Stopped ones keep their first reason (a complaint after an unsubscribe stays an
    unsubscribe); the caller cancels the open rows. Coming back through one magnet's form
    restarts that magnet only."""
    db.session.execute(
        update(Enrolment)
        .where(Enrolment.subscriber_id == subscriber_id, Enrolment.stopped_at.is_(None))
        .values(stopped_at=now, stop_reason=reason)
    )

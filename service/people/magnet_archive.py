"""Archiving a magnet: its page and API slug stop taking signups (410), and, when the owner
asks, its emails stop too: open rows cancelled, enrolments stopped."""

from __future__ import annotations

from sqlalchemy import update

from ..core.extensions import db
from ..core.models import AuditAction, EmailStatus, Enrolment, Magnet, ScheduledEmail
from ..sending.context import Context
from . import audit

STOP_REASON = "archived"


def archive(ctx: Context, magnet: Magnet, by: str, stop_emails: bool) -> int:
    """Archive the magnet and commit; the number of emails cancelled."""
    if magnet.is_default:
        raise ValueError("the default magnet cannot be archived: make another the default first")
    now = ctx.now()
    cancelled = 0
    if magnet.archived_at is None:
        magnet.archived_at = now
    if stop_emails:
        result = db.session.execute(
            update(ScheduledEmail)
            .where(
                ScheduledEmail.magnet_id == magnet.id,
                ScheduledEmail.status.in_(EmailStatus.OPEN),
            )
            .values(status=EmailStatus.CANCELLED, lease_until=None)
            .execution_options(synchronize_session=False)
        )
        cancelled = result.rowcount  # type: ignore[attr-defined]
        db.session.execute(
            update(Enrolment)
            .where(Enrolment.magnet_id == magnet.id, Enrolment.stopped_at.is_(None))
            .values(stopped_at=now, stop_reason=STOP_REASON)
            .execution_options(synchronize_session=False)
        )
    what = f"archived {magnet.slug}" + (
        f", its emails stopped ({cancelled} cancelled)" if stop_emails else ""
    )
    audit.note(by, AuditAction.ARCHIVE, what, now, magnet.id)
    db.session.commit()
    return cancelled

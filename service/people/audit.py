"""The audit trail: every publish, archive, upload and owner sign-in, one line each."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from ..core.extensions import db
from ..core.models import AuditAction, AuditEntry

PAGE = 200


def note(
    who: str, action: AuditAction, what: str, at: datetime, magnet_id: int | None = None
) -> None:
    """Add an entry to the session: it is committed with the change it records, or not at all."""
    db.session.add(AuditEntry(who=who, action=action, what=what[:2000], at=at, magnet_id=magnet_id))


def recent(limit: int = PAGE) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)
    return list(db.session.scalars(query))

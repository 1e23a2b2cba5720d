"""A magnet's guide PDF replaced from the editor: checked by its bytes, stored by its hash,
the previous one kept (replaced_at) for the links already sent."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from ..core.extensions import db
from ..core.models import EmailStatus, GuideUpload, Magnet, ScheduledEmail
from ..core.settings import Settings
from .guides import default_guide_key
from .storage import PDF, check_pdf, guide_key, storage_for

# A link sent before a replacement opens the guide it announced for this long.
OLD_GUIDE_KEPT = timedelta(days=30)


def upload(
    settings: Settings, magnet: Magnet, data: bytes, filename: str, by: str, now: datetime
) -> GuideUpload:
    """Store `data` as the magnet's guide (ValueError saying why a file is refused) and
    commit. The store is written first: a row never names bytes that are not there."""
    check_pdf(data)
    key = guide_key(data)
    storage_for(settings).put(key, data, PDF)
    earlier = uploads_of(magnet.id)
    for previous in earlier:
        if previous.replaced_at is None:
            previous.replaced_at = now
    if not earlier:
        _keep_the_first(settings, magnet, by, now)
    entry = GuideUpload(
        magnet_id=magnet.id,
        key=key,
        filename=(filename or "guide.pdf")[-255:],
        size=len(data),
        uploaded_at=now,
        uploaded_by=by,
    )
    db.session.add(entry)
    magnet.guide_key = key
    db.session.commit()
    return entry


def _keep_the_first(settings: Settings, magnet: Magnet, by: str, now: datetime) -> None:
    """The guide the magnet had before its first upload here (uploaded by the CLI, or the
    default's file), as a replaced upload: the links already sent keep it for 30 days."""
    if magnet.guide_key is not None:
        old = magnet.guide_key
    elif magnet.is_default and not settings.guide_url:
        old = default_guide_key(settings)
    else:
        return
    db.session.add(
        GuideUpload(
            magnet_id=magnet.id,
            key=old,
            filename="(the guide before)",
            size=0,
            uploaded_at=min(magnet.created_at, now),
            uploaded_by=by,
            replaced_at=now,
        )
    )


def uploads_of(magnet_id: int) -> list[GuideUpload]:
    query = select(GuideUpload).where(GuideUpload.magnet_id == magnet_id)
    return list(db.session.scalars(query.order_by(GuideUpload.id)))  # in the order made


def pick(uploads: list[GuideUpload], sent_at: datetime | None, now: datetime) -> str | None:
    """The key a guide link serves: the guide that was the magnet's when the link was sent,
    while that is under OLD_GUIDE_KEPT since it was replaced; else the newest. None: the
    magnet has no upload (the default guide)."""
    if not uploads:
        return None
    if sent_at is not None:
        # The guide in force when it was sent: the last one uploaded by then (the first
        # one, for a link older than every upload).
        sent = next((u for u in reversed(uploads) if u.uploaded_at <= sent_at), uploads[0])
        if sent.replaced_at is not None and now < sent.replaced_at + OLD_GUIDE_KEPT:
            return sent.key
    return uploads[-1].key


def served_key(
    magnet_id: int, subscriber_id: int, current: str | None, now: datetime
) -> str | None:
    """The key a guide link of this subscriber serves, when the editor's uploads decide it
    (the newest upload is the magnet's guide `current`); None: the caller's own choice."""
    uploads = uploads_of(magnet_id)
    if not uploads or uploads[-1].key != current:
        return None  # replaced since by other means (the CLI): that one is the guide
    first_sent = db.session.scalar(
        select(ScheduledEmail.sent_at)
        .where(
            ScheduledEmail.subscriber_id == subscriber_id,
            ScheduledEmail.magnet_id == magnet_id,
            ScheduledEmail.status == EmailStatus.SENT,
        )
        .order_by(ScheduledEmail.sent_at)
        .limit(1)
    )
    return pick(uploads, first_sent, now)

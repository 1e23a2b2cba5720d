"""A magnet's guide PDF replaced from the editor: checked by its bytes, stored by its hash,
the previous one kept (replaced_at) for the links already sent."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from ..core.extensions import db
from ..core.models import GuideUpload, Magnet
from ..core.settings import Settings
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
    for previous in uploads_of(magnet.id):
        if previous.replaced_at is None:
            previous.replaced_at = now
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


def uploads_of(magnet_id: int) -> list[GuideUpload]:
    query = select(GuideUpload).where(GuideUpload.magnet_id == magnet_id)
    return list(db.session.scalars(query.order_by(GuideUpload.uploaded_at, GuideUpload.id)))


def pick(uploads: list[GuideUpload], sent_at: datetime | None, now: datetime) -> str | None:
    """The key a guide link serves: the guide that was the magnet's when the link was sent,
    while that is under OLD_GUIDE_KEPT since it was replaced; else the newest. None: the
    magnet has no upload (the default guide)."""
    if not uploads:
        return None
    if sent_at is not None:
        for entry in uploads:
            replaced = entry.replaced_at
            if (
                replaced is not None
                and entry.uploaded_at <= sent_at < replaced
                and now < replaced + OLD_GUIDE_KEPT
            ):
                return entry.key
    return uploads[-1].key

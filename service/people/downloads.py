"""Guide downloads: each one counted on the subscriber, with the first and the last time."""

from __future__ import annotations

from ..core.extensions import db
from ..core.models import Subscriber
from ..sending.context import Context


def record_download(ctx: Context, subscriber_id: int) -> bool:
    """Count one download of the guide; False when there is no such subscriber."""
    subscriber = db.session.get(Subscriber, subscriber_id)
    if subscriber is None:
        return False
    now = ctx.now()
    subscriber.guide_downloads = (subscriber.guide_downloads or 0) + 1
    subscriber.first_download_at = subscriber.first_download_at or now
    subscriber.last_download_at = now
    db.session.commit()
    return True

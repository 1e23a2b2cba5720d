"""Guide downloads: each one counted on the subscriber (any guide) and on their enrolment in
the magnet whose guide it was, with the first and the last time."""

from __future__ import annotations

from sqlalchemy import func, select, update

from ..core.extensions import db
from ..core.models import Enrolment, Subscriber
from ..sending.context import Context


def record_download(ctx: Context, subscriber_id: int) -> bool:
    """Count one download of the guide of ctx's magnet; False when there is no such
    subscriber. A person who took guide A and downloads it has not downloaded guide B."""
    subscriber = db.session.get(Subscriber, subscriber_id)
    if subscriber is None:
        return False
    now = ctx.now()
    subscriber.guide_downloads = (subscriber.guide_downloads or 0) + 1
    subscriber.first_download_at = subscriber.first_download_at or now
    subscriber.last_download_at = now
    if ctx.magnet_id is not None:
        # One statement: two downloads at once both count, as the person's columns do not
        # (a read-modify-write there; one person's clicks racing is a small error).
        db.session.execute(
            update(Enrolment)
            .where(Enrolment.subscriber_id == subscriber_id, Enrolment.magnet_id == ctx.magnet_id)
            .values(
                guide_downloads=Enrolment.guide_downloads + 1,
                first_download_at=func.coalesce(Enrolment.first_download_at, now),
                last_download_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    db.session.commit()
    return True


def downloads_per_magnet() -> dict[int, tuple[int, int]]:
    """Per magnet: its guide's downloads, and the people who downloaded it at least once."""
    rows = db.session.execute(
        select(
            Enrolment.magnet_id,
            func.coalesce(func.sum(Enrolment.guide_downloads), 0),
            func.count().filter(Enrolment.guide_downloads > 0),
        ).group_by(Enrolment.magnet_id)
    ).all()
    return {magnet_id: (int(total), int(people)) for magnet_id, total, people in rows}

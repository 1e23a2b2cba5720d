"""Finding magnets: the default one, one by slug, the active ones.

(A stand-in with the pinned names until the content branch's module replaces it.)"""

from __future__ import annotations

from sqlalchemy import select

from ..core.extensions import db
from ..core.models import Magnet

DEFAULT_SLUG = "default"


def default_magnet() -> Magnet:
    """The magnet of GET / and of an API signup naming none (made if the database has none)."""
    found = db.session.scalar(select(Magnet).where(Magnet.is_default))
    if found is None:
        found = Magnet(slug=DEFAULT_SLUG, title="Default guide", is_default=True)
        db.session.add(found)
        db.session.flush()
    return found


def by_slug(slug: str) -> Magnet | None:
    """Archived magnets included: callers check `archived_at`."""
    return db.session.scalar(select(Magnet).where(Magnet.slug == slug))


def active() -> list[Magnet]:
    return list(
        db.session.scalars(select(Magnet).where(Magnet.archived_at.is_(None)).order_by(Magnet.id))
    )

"""Which magnet a signup is for: the optional `magnet` field, a slug (absent: the default)."""

from __future__ import annotations

from ..content.magnets import by_slug
from ..core.models import Magnet

UNKNOWN = "There is no guide by that name."
NOT_TEXT = "The magnet must be text: a guide's short name, like knee-checklist."
MAX_SLUG = 64


def choose_magnet(raw: object) -> tuple[Magnet | None, str | None]:
    """(the magnet, None), (None, None) for the default, or (None, the error on `magnet`).
    An archived magnet, or one with no published version, takes no signups: it is answered
    as unknown."""
    if raw is None or raw == "":
        return None, None
    if not isinstance(raw, str):
        return None, NOT_TEXT
    slug = raw.strip()
    if not slug or len(slug) > MAX_SLUG:
        return None, UNKNOWN
    magnet = by_slug(slug)
    if magnet is None or magnet.archived_at is not None or magnet.published_version_id is None:
        return None, UNKNOWN  # none, retired, or nothing published yet: no guide to send
    return magnet, None

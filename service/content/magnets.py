"""Lead magnets: finding them, making one, and the default magnet whose content is loaded
at first start (SEQUENCE_FILE, or the shipped email_templates/)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..core.clock import utcnow
from ..core.extensions import db
from ..core.models import Magnet
from ..core.settings import Settings
from .magnet_files import load_files, read_sequence_folder
from .rendering import TemplateFiles
from .sequence import MAGNET_SLUG, Sequence
from .versions import mark_published, new_version

log = logging.getLogger(__name__)
SLUG = MAGNET_SLUG
DEFAULT_SLUG = "default"
DEFAULT_TITLE = "Default guide"
FILE = "file"  # who published a version read from SEQUENCE_FILE or the shipped folder


class MagnetError(ValueError):
    """A magnet cannot be made or changed so; the message is one line."""


def check_slug(slug: str) -> str:
    if not SLUG.fullmatch(slug):
        raise MagnetError(f"slug {slug!r} must be 1-64 lowercase letters, digits or -")
    return slug


def by_slug(slug: str) -> Magnet | None:
    """The magnet of that slug, archived ones included (callers check `archived_at`)."""
    return db.session.scalar(select(Magnet).where(Magnet.slug == slug))


def active() -> list[Magnet]:
    """Magnets not archived, the default first, then by slug."""
    return list(
        db.session.scalars(
            select(Magnet)
            .where(Magnet.archived_at.is_(None))
            .order_by(Magnet.is_default.desc(), Magnet.slug)
        )
    )


def default_magnet() -> Magnet:
    """The default magnet's row, made if it is missing (an emptied database); it may have
    no content yet: ensure_default loads it."""
    found = db.session.scalar(select(Magnet).where(Magnet.is_default))
    if found is not None:
        return found
    now = utcnow()
    try:
        with db.session.begin_nested():  # another process may make it at the same moment
            db.session.add(
                Magnet(
                    slug=_free_slug(DEFAULT_SLUG),
                    title=DEFAULT_TITLE,
                    is_default=True,
                    created_at=now,
                    updated_at=now,
                )
            )
    except IntegrityError:
        pass
    return db.session.scalars(select(Magnet).where(Magnet.is_default)).one()


def _free_slug(slug: str) -> str:
    return slug if by_slug(slug) is None else f"{slug}-{utcnow():%Y%m%d%H%M%S}"


def create(slug: str, title: str, files: Mapping[str, str], by: str) -> Magnet:
    """A new magnet with its files as version 1, published (nobody is in its sequence yet)."""
    check_slug(slug)
    if by_slug(slug) is not None:
        raise MagnetError(f"a magnet {slug!r} exists already")
    if not title.strip():
        raise MagnetError("a magnet needs a title")
    now = utcnow()
    magnet = Magnet(slug=slug, title=title.strip()[:200], created_at=now, updated_at=now)
    db.session.add(magnet)
    db.session.flush()
    version = new_version(magnet, files, by, note="created")
    mark_published(magnet, version, by)
    return magnet


def ensure_default(settings: Settings, content: Sequence | None = None) -> Magnet:
    """The default magnet with content: on the first start of an empty database, the
    sequence file's folder becomes version 1, published by "file". Safe when several
    processes start at once: the magnet's row lock makes one of them do it. Flushes; the
    caller commits. `content`: the sequence file as last read good (else read now)."""
    magnet = default_magnet()
    managed = str(settings.sequence_file) if settings.sequence_file_managed else None
    if magnet.published_version_id is not None and magnet.managed_by_file == managed:
        return magnet
    db.session.execute(select(Magnet.id).where(Magnet.id == magnet.id).with_for_update())
    db.session.refresh(magnet)
    if magnet.published_version_id is None:
        templates = content.templates if content is not None else None
        if isinstance(templates, TemplateFiles):
            files = dict(templates.files)
        else:
            files = read_sequence_folder(settings.sequence_file)
        version = new_version(magnet, files, FILE, note=f"loaded from {settings.sequence_file}")
        mark_published(magnet, version, FILE)
        name_from(magnet, load_files(files))
        log.info("the default magnet %r loaded from %s", magnet.slug, settings.sequence_file)
    magnet.managed_by_file = managed
    db.session.flush()
    return magnet


def name_from(magnet: Magnet, sequence: Sequence) -> None:
    """Take the slug and title of the content's [magnet] table, where given (and the slug
    is not another magnet's)."""
    slug, title = sequence.magnet.get("slug"), sequence.magnet.get("title")
    if isinstance(slug, str) and slug != magnet.slug:
        other = by_slug(slug)
        if other is None:
            magnet.slug = slug
        else:
            log.warning("magnet slug %r is taken: %r keeps its own", slug, magnet.slug)
    if isinstance(title, str) and title.strip():
        magnet.title = title.strip()[:200]

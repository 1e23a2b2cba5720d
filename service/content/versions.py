"""A magnet's content versions: immutable, numbered per magnet, checked before they are kept;
their files, their history and a readable diff between two of them."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping

from sqlalchemy import func, select

from ..core.clock import utcnow
from ..core.extensions import db
from ..core.models import Magnet, MagnetPublication, MagnetVersion
from .magnet_files import fingerprint, load_files


def new_version(
    magnet: Magnet, files: Mapping[str, str], by: str, note: str | None = None
) -> MagnetVersion:
    """Check the files (load_files: SequenceError with one line) and keep them as the
    magnet's next version, unpublished. The magnet's row is locked for the numbering."""
    load_files(files, where=f"{magnet.slug}/sequence.toml")
    db.session.execute(select(Magnet.id).where(Magnet.id == magnet.id).with_for_update())
    last = db.session.scalar(
        select(func.max(MagnetVersion.number)).where(MagnetVersion.magnet_id == magnet.id)
    )
    version = MagnetVersion(
        magnet_id=magnet.id,
        number=(last or 0) + 1,
        files=json.dumps(dict(sorted(files.items())), ensure_ascii=False),
        fingerprint=fingerprint(files),
        created_at=utcnow(),
        created_by=by,
        note=note,
    )
    db.session.add(version)
    db.session.flush()
    return version


def files_of(version: MagnetVersion) -> dict[str, str]:
    files: dict[str, str] = json.loads(version.files)
    return files


def by_number(magnet: Magnet, number: int) -> MagnetVersion | None:
    return db.session.scalar(
        select(MagnetVersion).where(
            MagnetVersion.magnet_id == magnet.id, MagnetVersion.number == number
        )
    )


def published_version(magnet: Magnet) -> MagnetVersion | None:
    if magnet.published_version_id is None:
        return None
    return db.session.get(MagnetVersion, magnet.published_version_id)


def history(magnet: Magnet) -> list[tuple[MagnetVersion, list[MagnetPublication]]]:
    """Every version, oldest first, with each time it was published (a rollback publishes
    an older one again)."""
    versions = db.session.scalars(
        select(MagnetVersion)
        .where(MagnetVersion.magnet_id == magnet.id)
        .order_by(MagnetVersion.number)
    ).all()
    publications = db.session.scalars(
        select(MagnetPublication)
        .where(MagnetPublication.magnet_id == magnet.id)
        .order_by(MagnetPublication.published_at, MagnetPublication.id)
    ).all()
    return [(v, [p for p in publications if p.version_id == v.id]) for v in versions]


def diff(old_files: Mapping[str, str], new_files: Mapping[str, str]) -> str:
    """A unified diff of every file that differs, named a/<path> and b/<path>."""
    out: list[str] = []
    for name in sorted(set(old_files) | set(new_files)):
        old, new = old_files.get(name), new_files.get(name)
        if old == new:
            continue
        out.extend(
            difflib.unified_diff(
                (old or "").splitlines(keepends=True),
                (new or "").splitlines(keepends=True),
                fromfile=f"a/{name}" if old is not None else "/dev/null",
                tofile=f"b/{name}" if new is not None else "/dev/null",
            )
        )
        if out and not out[-1].endswith("\n"):
            out[-1] += "\n\\ No newline at end of file\n"
    return "".join(out)


def mark_published(
    magnet: Magnet, version: MagnetVersion, by: str, impact: list[dict] | None = None
) -> MagnetPublication:
    """Put the version in force and record who did it, when, and what it changed (the
    schedule's part is sending/publish.py's); the caller holds the magnet's row lock."""
    now = utcnow()
    magnet.published_version_id = version.id
    magnet.updated_at = now
    publication = MagnetPublication(
        magnet_id=magnet.id,
        version_id=version.id,
        published_at=now,
        published_by=by,
        impact=json.dumps(impact or []),
    )
    db.session.add(publication)
    db.session.flush()
    return publication

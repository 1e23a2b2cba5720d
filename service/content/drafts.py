"""A magnet's draft: what the editor saves between publishes. Each save names the revision
it was opened at; a save against a newer revision is refused (StaleDraft), never merged."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import update

from ..core.extensions import db
from ..core.models import Magnet, MagnetDraft, MagnetVersion


class StaleDraft(Exception):
    """Someone saved the draft since this editor opened it."""

    def __init__(self, current: MagnetDraft) -> None:
        super().__init__("the draft changed since you opened it")
        self.current = current


def version_files(version: MagnetVersion) -> dict[str, str]:
    files = json.loads(version.files)
    if not isinstance(files, dict):
        raise ValueError(f"version {version.id} holds no files object")
    return {str(k): str(v) for k, v in files.items()}


def draft_files(draft: MagnetDraft) -> dict[str, str]:
    return {str(k): str(v) for k, v in json.loads(draft.files).items()}


def draft_of(magnet: Magnet) -> MagnetDraft | None:
    return db.session.query(MagnetDraft).filter_by(magnet_id=magnet.id).one_or_none()


def open_draft(magnet: Magnet, by: str, now: datetime) -> MagnetDraft:
    """The magnet's draft, made from its published version when it has none (committed,
    so two editors opening at once share one)."""
    found = draft_of(magnet)
    if found is not None:
        return found
    version = db.session.get(MagnetVersion, magnet.published_version_id)
    if version is None:
        raise ValueError(f"magnet {magnet.slug!r} has no published version to edit")
    draft = MagnetDraft(
        magnet_id=magnet.id,
        files=json.dumps(version_files(version), sort_keys=True),
        base_version_id=version.id,
        revision=1,
        updated_at=now,
        updated_by=by,
    )
    db.session.add(draft)
    try:
        db.session.commit()
    except Exception:  # another editor made it first: theirs is the draft
        db.session.rollback()
        existing = draft_of(magnet)
        if existing is None:
            raise
        return existing
    return draft


def save(
    magnet: Magnet,
    files: dict[str, str],
    revision: int,
    by: str,
    now: datetime,
    base_version_id: int | None = None,
) -> MagnetDraft:
    """Store `files` as the draft if it is still at `revision`; commit; the new revision.
    One conditional UPDATE: of two saves naming the same revision, one wins."""
    values: dict = {
        "files": json.dumps(files, sort_keys=True),
        "revision": MagnetDraft.revision + 1,
        "updated_at": now,
        "updated_by": by,
    }
    if base_version_id is not None:
        values["base_version_id"] = base_version_id
    result = db.session.execute(
        update(MagnetDraft)
        .where(MagnetDraft.magnet_id == magnet.id, MagnetDraft.revision == revision)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        current = draft_of(magnet)
        if current is None:
            raise ValueError(f"magnet {magnet.slug!r} has no draft")
        db.session.refresh(current)
        raise StaleDraft(current)
    db.session.commit()
    draft = draft_of(magnet)
    assert draft is not None
    db.session.refresh(draft)
    return draft


def restore(magnet: Magnet, version: MagnetVersion, by: str, now: datetime) -> MagnetDraft:
    """A new draft from an older version: whatever was in the draft gives way (an editor
    still open on it is then stale, and told so on saving)."""
    draft = open_draft(magnet, by, now)
    return save(magnet, version_files(version), draft.revision, by, now, version.id)

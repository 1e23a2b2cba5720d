"""A magnet's draft: what the editor saves between publishes. Each save names the revision
it was opened at; a save against a newer revision is refused (StaleDraft), never merged. A
version published elsewhere since the draft's base (the CLI, a file) is followed when the
draft holds no edit of its own, else it is a Conflict the owner settles."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update

from ..core.extensions import db
from ..core.models import Magnet, MagnetDraft, MagnetVersion
from .versions import diff


class StaleDraft(Exception):
    """Someone saved the draft since this editor opened it."""

    def __init__(self, current: MagnetDraft) -> None:
        super().__init__("the draft changed since you opened it")
        self.current = current


@dataclass(frozen=True)
class Conflict:
    """A version was published elsewhere after the draft was opened, and both changed."""

    draft: MagnetDraft
    base: MagnetVersion | None  # the version the draft was opened from (None: deleted)
    published: MagnetVersion  # the one in force now
    theirs: str  # what the published version changed from the base (a unified diff)
    mine: str  # what the draft changes from the base


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
    """A new draft from an older version (or the one in force): whatever was in the draft
    gives way (an editor still open on it is then stale, and told so on saving). Its base is
    the version in force: restoring is an edit made on top of it."""
    draft = open_draft(magnet, by, now)
    base = magnet.published_version_id or version.id
    return save(magnet, version_files(version), draft.revision, by, now, base)


def follow(magnet: Magnet) -> Conflict | None:
    """Bring the draft's base up to the version in force when one was published elsewhere
    since (the CLI, SEQUENCE_FILE, another owner): a draft without edits of its own takes
    the new version's files, one that already equals it just moves its base. A draft with
    edits on an older base is left as it is and returned as a Conflict (publishing it as it
    is would silently undo the other version)."""
    draft = draft_of(magnet)
    published = db.session.get(MagnetVersion, magnet.published_version_id)
    if draft is None or published is None or draft.base_version_id == published.id:
        return None
    base = db.session.get(MagnetVersion, draft.base_version_id) if draft.base_version_id else None
    base_files = version_files(base) if base is not None else {}
    files, theirs = draft_files(draft), version_files(published)
    if files == base_files:  # nothing of the owner's to keep: the draft follows
        _rebase(magnet, draft, published, theirs)
    elif files == theirs or theirs == base_files:  # same content: only the base moves
        _rebase(magnet, draft, published, None)
    else:
        return Conflict(draft, base, published, diff(base_files, theirs), diff(base_files, files))
    return None


def keep_mine(magnet: Magnet, revision: int, by: str, now: datetime) -> MagnetDraft:
    """The owner saw the conflict and keeps their draft: it is now based on the version in
    force (publishing it replaces that version's changes, shown in its impact). StaleDraft
    if the draft was saved since the conflict was shown."""
    draft = draft_of(magnet)
    if draft is None or magnet.published_version_id is None:
        raise ValueError(f"magnet {magnet.slug!r} has no draft to keep")
    return save(magnet, draft_files(draft), revision, by, now, magnet.published_version_id)


def _rebase(
    magnet: Magnet, draft: MagnetDraft, published: MagnetVersion, files: dict[str, str] | None
) -> None:
    """The draft's base (and files, when given: a new revision, so an editor open on the
    old text is told it is stale) moved to the published version, if nobody saved since."""
    values: dict = {"base_version_id": published.id}
    if files is not None:
        values.update(files=json.dumps(files, sort_keys=True), revision=draft.revision + 1)
    db.session.execute(
        update(MagnetDraft)
        .where(MagnetDraft.magnet_id == magnet.id, MagnetDraft.revision == draft.revision)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    db.session.refresh(draft)

"""A magnet's draft: made from the published version, saved only at the revision it was
opened at, restored from an older version; and the guide a link serves after an upload."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from service.content import drafts
from service.content.guide_uploads import OLD_GUIDE_KEPT, pick
from service.core.extensions import db
from service.core.models import GuideUpload, Magnet, MagnetVersion

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def magnet_with_version(files: dict[str, str], number: int = 1) -> Magnet:
    magnet = db.session.scalar(select(Magnet).where(Magnet.slug == "ed"))
    if magnet is None:
        magnet = Magnet(slug="ed", title="Ed")
        db.session.add(magnet)
        db.session.flush()
    version = MagnetVersion(
        magnet_id=magnet.id,
        number=number,
        files=json.dumps(files),
        fingerprint=str(number),
        created_by="test",
    )
    db.session.add(version)
    db.session.flush()
    magnet.published_version_id = version.id
    db.session.commit()
    return magnet


def test_a_save_at_an_old_revision_is_refused_and_changes_nothing(app):
    with app.app_context():
        magnet = magnet_with_version({"sequence.toml": "v1"})
        draft = drafts.open_draft(magnet, "a@example.com", NOW)
        assert drafts.draft_files(draft) == {"sequence.toml": "v1"} and draft.revision == 1
        assert drafts.open_draft(magnet, "b@example.com", NOW).id == draft.id  # one per magnet
        saved = drafts.save(magnet, {"sequence.toml": "A"}, 1, "a@example.com", NOW)
        assert saved.revision == 2
        with pytest.raises(drafts.StaleDraft) as stale:
            drafts.save(magnet, {"sequence.toml": "B"}, 1, "b@example.com", NOW)
        assert drafts.draft_files(stale.value.current) == {"sequence.toml": "A"}
        assert stale.value.current.revision == 2


def test_restore_puts_an_older_version_in_the_draft_and_bumps_the_revision(app):
    with app.app_context():
        magnet = magnet_with_version({"sequence.toml": "v1"})
        first = db.session.scalar(select(MagnetVersion).where(MagnetVersion.number == 1))
        magnet = magnet_with_version({"sequence.toml": "v2"}, number=2)
        draft = drafts.open_draft(magnet, "a@example.com", NOW)
        assert drafts.draft_files(draft) == {"sequence.toml": "v2"}
        restored = drafts.restore(magnet, first, "a@example.com", NOW)
        assert drafts.draft_files(restored) == {"sequence.toml": "v1"}
        # Its base is the version in force: the restore is an edit on top of it, not a draft
        # opened long ago that a newer version would overrule.
        assert restored.revision == 2 and restored.base_version_id == magnet.published_version_id
        assert drafts.follow(magnet) is None and drafts.draft_files(restored) == {
            "sequence.toml": "v1"
        }


def upload_row(key: str, at: datetime, replaced: datetime | None) -> GuideUpload:
    return GuideUpload(key=key, uploaded_at=at, replaced_at=replaced, filename="g.pdf", size=1)


def test_a_link_sent_before_a_new_guide_keeps_the_old_one_for_30_days():
    old = upload_row("old", NOW - timedelta(days=60), NOW - timedelta(days=10))
    new = upload_row("new", NOW - timedelta(days=10), None)
    sent_before = NOW - timedelta(days=20)
    assert pick([old, new], sent_before, NOW) == "old"
    assert pick([old, new], sent_before, NOW + OLD_GUIDE_KEPT) == "new"  # 40 days on
    assert pick([old, new], NOW - timedelta(days=5), NOW) == "new"  # sent after
    assert pick([old, new], None, NOW) == "new"
    assert pick([], sent_before, NOW) is None

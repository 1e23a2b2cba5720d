"""A version published elsewhere (the CLI) while a draft is open: a draft without edits
follows it; a draft with edits is never published over it unseen: the owner sees what each
changed and keeps theirs or takes the new one."""

from __future__ import annotations

import threading
from dataclasses import replace
from html import unescape

import pytest
from sqlalchemy import select

from service.content import versions
from service.content.draft_steps import steps_of
from service.core.extensions import db
from service.core.models import Magnet
from service.sending.context import for_app
from service.sending.publish import ANY, publish
from tests.helpers import sign_in_owner
from tests.sending.test_publish_race import waiting_on_locks
from tests.web.test_editor import confirm, default_slug, draft, form_of, token

CLI_SUBJECT = "Subject from the command line"


def cli_publish(app, slug: str) -> int:
    """`leadmagnet content publish` of a new version whose first step's subject changed."""
    with app.app_context():
        magnet = db.session.scalar(select(Magnet).where(Magnet.slug == slug))
        files = versions.files_of(versions.published_version(magnet))
        files[f"{steps_of(files)[0].template}/subject.txt"] = CLI_SUBJECT + "\n"
        version = versions.new_version(magnet, files, "cli@example.com", note="from the CLI")
        db.session.commit()
        publish(for_app(app).for_magnet(magnet.id), magnet, version, "cli@example.com", over=ANY)
        return version.number


def published_number(app, slug: str) -> int:
    with app.app_context():
        magnet = db.session.scalar(select(Magnet).where(Magnet.slug == slug))
        number = versions.published_version(magnet).number
        db.session.rollback()
        return number


def edited(app, client, slug: str, subject: str, action: str = "save"):
    """The owner's draft with the second step's subject changed, saved (or published)."""
    steps, revision = draft(app, slug)
    steps[1] = replace(steps[1], subject=subject)
    return client.post(
        f"/admin/magnets/{slug}/edit",
        data={**form_of(steps, revision, action), "csrf_token": token(client)},
    )


def opened(app, client) -> str:
    sign_in_owner(app, client)
    slug = default_slug(app)
    assert client.get(f"/admin/magnets/{slug}/edit").status_code == 200  # draft of version 1
    return slug


def test_a_draft_without_edits_follows_a_version_published_elsewhere(app, client):
    slug = opened(app, client)
    assert cli_publish(app, slug) == 2
    page = client.get(f"/admin/magnets/{slug}/edit").get_data(as_text=True)
    assert CLI_SUBJECT in unescape(page) and "editor-conflict" not in page
    steps, _revision = draft(app, slug)
    assert steps[0].subject == CLI_SUBJECT


def test_publishing_a_draft_over_a_newer_version_shows_both_and_keeps_mine(app, client):
    slug = opened(app, client)
    assert edited(app, client, slug, "Mine, from the editor").status_code == 303
    assert cli_publish(app, slug) == 2
    banner = client.get(f"/admin/magnets/{slug}/edit").get_data(as_text=True)
    assert "editor-conflict" in banner and "Version 2 was published" in banner
    answer = edited(app, client, slug, "Mine, from the editor", "publish")
    assert answer.status_code == 303 and answer.location.endswith(f"/{slug}/conflict")
    assert published_number(app, slug) == 2  # nothing published over it
    page = unescape(client.get(answer.location).get_data(as_text=True))
    theirs, mine = page.split('id="mine-heading"')
    assert f"+{CLI_SUBJECT}" in theirs and "Mine, from the editor" not in theirs
    assert "+Mine, from the editor" in mine
    revision = draft(app, slug)[1]
    kept = client.post(
        f"/admin/magnets/{slug}/conflict/keep",
        data={"revision": str(revision), "csrf_token": token(client)},
    )
    assert kept.status_code == 303 and kept.location.endswith(f"/{slug}/publish/3")
    assert confirm(client, client.get(kept.location).get_data(as_text=True)).status_code == 303
    assert published_number(app, slug) == 3
    steps, _revision = draft(app, slug)
    assert steps[1].subject == "Mine, from the editor" and steps[0].subject != CLI_SUBJECT
    assert "editor-conflict" not in client.get(f"/admin/magnets/{slug}/edit").get_data(as_text=True)


def test_the_owner_can_take_the_new_version_instead(app, client):
    slug = opened(app, client)
    edited(app, client, slug, "Mine, dropped")
    cli_publish(app, slug)
    revision = draft(app, slug)[1]
    taken = client.post(
        f"/admin/magnets/{slug}/conflict/take",
        data={"revision": str(revision), "csrf_token": token(client)},
    )
    assert taken.status_code == 303
    steps, _revision = draft(app, slug)
    assert steps[0].subject == CLI_SUBJECT and steps[1].subject != "Mine, dropped"
    assert client.get(f"/admin/magnets/{slug}/conflict").status_code == 303  # settled
    stale = client.post(
        f"/admin/magnets/{slug}/conflict/keep",
        data={"revision": str(revision), "csrf_token": token(client)},
    )
    assert stale.status_code == 303 and published_number(app, slug) == 2


def test_a_publish_page_opened_before_the_other_publish_does_not_go_over_it(app, client):
    slug = opened(app, client)
    answer = edited(app, client, slug, "Mine, reviewed", "publish")
    assert answer.location.endswith(f"/{slug}/publish/2")  # made from the draft, not live
    page = client.get(answer.location).get_data(as_text=True)
    assert cli_publish(app, slug) == 3
    late = confirm(client, page)
    assert late.status_code == 303 and late.location.endswith(f"/{slug}/conflict")
    assert published_number(app, slug) == 3


def test_a_rollback_reviewed_before_another_publish_is_refused_and_shown_again(app, client):
    """No draft edits to conflict with: only the version in force the page showed its impact
    over tells that the impact is no longer the one publishing would have."""
    slug = opened(app, client)
    assert cli_publish(app, slug) == 2
    page = client.get(f"/admin/magnets/{slug}/publish/1").get_data(as_text=True)
    assert cli_publish(app, slug) == 3  # lands while the owner reads the rollback's impact
    late = confirm(client, page)
    assert late.status_code == 303 and late.location.endswith(f"/{slug}/publish/1")
    assert published_number(app, slug) == 3
    shown = unescape(client.get(late.location).get_data(as_text=True))
    assert "Version 1 was not published: version 3 was published after this page" in shown
    assert confirm(client, shown).status_code == 303  # reviewed again over version 3
    assert published_number(app, slug) == 1


def test_two_owners_confirming_the_same_review_publish_it_once(app, client):
    slug = opened(app, client)
    answer = edited(app, client, slug, "Ours, reviewed by both", "publish")
    page = client.get(answer.location).get_data(as_text=True)
    first = confirm(client, page)
    assert first.status_code == 303 and published_number(app, slug) == 2
    second = confirm(client, page)  # the other owner's page, shown before the first publish
    assert second.status_code == 303
    assert "already published" in client.get(second.location).get_data(as_text=True)
    with app.app_context():
        magnet = db.session.scalar(select(Magnet).where(Magnet.slug == slug))
        assert [len(p) for _v, p in versions.history(magnet)] == [1, 1]


def test_a_restored_version_publishes_without_a_conflict(app, client):
    slug = opened(app, client)
    cli_publish(app, slug)
    client.post(f"/admin/magnets/{slug}/history/1/restore", data={"csrf_token": token(client)})
    steps, revision = draft(app, slug)
    assert steps[0].subject != CLI_SUBJECT
    answer = client.post(
        f"/admin/magnets/{slug}/edit",
        data={**form_of(steps, revision, "publish"), "csrf_token": token(client)},
    )
    assert answer.location.endswith(f"/{slug}/publish/3")


@pytest.mark.postgres
def test_a_publish_landing_while_the_owners_confirm_waits_shows_the_conflict(pg_app):
    """The CLI holds the magnet's row while the owner's confirm has passed the editor's own
    checks and waits for it; the CLI's version lands; the confirm must not go over it."""
    app, client = pg_app, pg_app.test_client()
    slug = opened(app, client)
    answer = edited(app, client, slug, "Mine, reviewed", "publish")
    page = client.get(answer.location).get_data(as_text=True)  # its impact over version 1
    got = []
    with app.app_context():
        magnet = db.session.scalar(select(Magnet).where(Magnet.slug == slug).with_for_update())
        owner = threading.Thread(target=lambda: got.append(confirm(client, page)))
        owner.start()
        waiting_on_locks(1, [owner])
        files = versions.files_of(versions.published_version(magnet))
        files[f"{steps_of(files)[0].template}/subject.txt"] = CLI_SUBJECT + "\n"
        version = versions.new_version(magnet, files, "cli@example.com", note="from the CLI")
        publish(for_app(app).for_magnet(magnet.id), magnet, version, "cli@example.com", over=ANY)
    owner.join(timeout=60)
    assert got and got[0].status_code == 303 and got[0].location.endswith(f"/{slug}/conflict")
    assert published_number(app, slug) == 3

"""The owner's editor over HTTP: magnets, the draft and its revision check, preview, test
sends, publishing with the impact first, history and restore, archive, the audit trail."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from io import BytesIO
from pathlib import Path

from sqlalchemy import func, select

from service.content.draft_steps import EditableStep, steps_of
from service.content.guide_pages import SAMPLE_GUIDE
from service.core.extensions import db
from service.core.models import (
    AuditEntry,
    EmailStatus,
    Enrolment,
    GuideUpload,
    Magnet,
    MagnetDraft,
    ScheduledEmail,
    Subscriber,
)
from tests.helpers import (
    OWNER,
    api_signup,
    dispatch_inline,
    outbox_messages,
    parts,
    sign_in_owner,
)
from tests.web.test_guide_storage import GUIDE_LINK

KNEE_GUIDE = Path(__file__).resolve().parents[1] / "fixtures" / "knee-checklist" / "guide.pdf"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
OVER = re.compile(r'name="over" value="(\d*)"')


def token(client, path: str = "/admin/magnets") -> str:
    return CSRF.search(client.get(path).get_data(as_text=True)).group(1)


def confirm(client, page: str):
    """The publish page's button, on the page as it was shown (`page`, its HTML): posts the
    version in force its impact was computed over, read from the page."""
    path = re.search(r'<form method="post" action="([^"]*/publish/\d+)"', page).group(1)
    data = {"csrf_token": CSRF.search(page).group(1), "over": OVER.search(page).group(1)}
    return client.post(path, data=data)


def form_of(steps: list[EditableStep], revision: int, action: str = "save", **extra) -> dict:
    data = {"revision": str(revision), "count": str(len(steps)), "action": action, **extra}
    for n, step in enumerate(steps):
        for name in (
            "id",
            "template",
            "delay",
            "hours",
            "days",
            "subject",
            "preheader",
            "mode",
            "markdown",
            "html",
            "text",
        ):
            data[f"s{n}-{name}"] = getattr(step, name)
    return data


def default_slug(app) -> str:
    with app.app_context():
        return db.session.scalar(select(Magnet.slug).where(Magnet.is_default))


def draft(app, slug: str) -> tuple[list[EditableStep], int]:
    with app.app_context():
        magnet = db.session.scalar(select(Magnet).where(Magnet.slug == slug))
        row = db.session.scalar(select(MagnetDraft).where(MagnetDraft.magnet_id == magnet.id))
        return steps_of(json.loads(row.files)), row.revision


def new_magnet(client, slug="squats", pdf: bytes | None = None):
    data = {
        "csrf_token": token(client, "/admin/magnets/new"),
        "slug": slug,
        "title": "Squat better",
        "page_text": "Ten minutes a day.",
        "consent": "Yes, email me the squat guide.",
    }
    if pdf is not None:
        data["guide"] = (BytesIO(pdf), "squats.pdf")
    return client.post("/admin/magnets/new", data=data, content_type="multipart/form-data")


def test_a_new_magnet_with_its_pdf_starts_from_the_default_sequence(app, client):
    sign_in_owner(app, client)
    answer = new_magnet(client, pdf=SAMPLE_GUIDE.read_bytes())
    assert answer.status_code == 303 and answer.location.endswith("/admin/magnets/squats/edit")
    page = client.get("/admin/magnets/squats/edit").get_data(as_text=True)
    assert "Sequence of Squat better" in page
    steps, revision = draft(app, "squats")
    assert steps[0].id == "guide" and revision == 1
    listing = client.get("/admin/magnets").get_data(as_text=True)
    assert 'href="/m/squats"' in listing
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(GuideUpload)) == 1
        actions = [e.action for e in db.session.scalars(select(AuditEntry))]
    assert {"sign-in", "create", "upload"} <= set(actions)
    audit = client.get("/admin/audit").get_data(as_text=True)
    assert "created squats" in audit and "new guide for squats" in audit


def test_a_file_that_is_not_a_pdf_is_refused_and_nothing_is_made(app, client):
    sign_in_owner(app, client)
    answer = new_magnet(client, pdf=b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert 'role="alert"' in page and "it is a PNG image" in page
    assert 'value="squats"' in page and "Yes, email me the squat guide." in page  # kept
    with app.app_context():
        assert db.session.scalar(select(Magnet).where(Magnet.slug == "squats")) is None


def test_a_stale_save_is_refused_and_its_text_shown_back(app, client):
    sign_in_owner(app, client)
    slug = default_slug(app)
    client.get(f"/admin/magnets/{slug}/edit")
    steps, revision = draft(app, slug)
    first = [EditableStep(**{**steps[0].__dict__, "subject": "Mine first"}), *steps[1:]]
    assert (
        client.post(
            f"/admin/magnets/{slug}/edit",
            data={**form_of(first, revision), "csrf_token": token(client)},
        ).status_code
        == 303
    )
    second = [EditableStep(**{**steps[0].__dict__, "subject": "Theirs, later"}), *steps[1:]]
    answer = client.post(
        f"/admin/magnets/{slug}/edit",
        data={**form_of(second, revision), "csrf_token": token(client)},
    )
    assert answer.status_code == 409
    page = answer.get_data(as_text=True)
    assert "changed since you opened it" in page and 'role="alert"' in page
    assert 'value="Theirs, later"' in page  # nothing lost
    saved, now = draft(app, slug)
    assert saved[0].subject == "Mine first" and now == revision + 1


def test_add_a_markdown_step_preview_it_and_send_a_test(app, client, outbox):
    sign_in_owner(app, client)
    slug = default_slug(app)
    client.get(f"/admin/magnets/{slug}/edit")
    steps, revision = draft(app, slug)
    answer = client.post(
        f"/admin/magnets/{slug}/edit",
        data={
            **form_of(steps, revision, "add", new_title="Week 2: Squats!"),
            "csrf_token": token(client),
        },
    )
    assert answer.status_code == 303 and answer.location.endswith("#step-week-2-squats")
    steps, revision = draft(app, slug)
    added = steps[-1]
    assert added.id == "week-2-squats" and added.mode == "markdown"
    steps[-1] = EditableStep(
        **{
            **added.__dict__,
            "markdown": "Hi {{ first_name }}, **squat** today: [guide]({{ guide_url }})",
        }
    )
    client.post(
        f"/admin/magnets/{slug}/edit",
        data={**form_of(steps, revision), "csrf_token": token(client)},
    )
    page = client.get(f"/admin/magnets/{slug}/steps/week-2-squats/preview").get_data(as_text=True)
    assert 'width="375"' in page and "sandbox srcdoc=" in page
    assert "<strong>squat</strong>" in unescape(page)
    assert "Hi Sam, squat today: guide:\nhttps://news.example.org/guide/" in page  # text part
    answer = client.post(
        f"/admin/magnets/{slug}/steps/week-2-squats/test", data={"csrf_token": token(client)}
    )
    assert answer.status_code == 303
    sent = outbox_messages(outbox)
    assert [m["To"].addresses[0].addr_spec for m in sent] == [OWNER[0]]
    assert sent[0]["Subject"] == "[Test] Week 2: Squats!"
    with app.app_context():  # no subscriber row, no figure
        assert db.session.scalar(select(func.count()).select_from(ScheduledEmail)) == 0


def test_test_sends_are_limited_per_hour(app, client, outbox):
    sign_in_owner(app, client)
    slug = default_slug(app)
    client.get(f"/admin/magnets/{slug}/edit")
    for _ in range(10):
        client.post(f"/admin/magnets/{slug}/steps/guide/test", data={"csrf_token": token(client)})
    answer = client.post(
        f"/admin/magnets/{slug}/steps/guide/test",
        data={"csrf_token": token(client)},
        follow_redirects=True,
    )
    assert "limited to 10 an hour" in answer.get_data(as_text=True)
    assert len(outbox_messages(outbox)) == 10


def test_publish_shows_the_impact_then_applies_once_and_restore_makes_a_draft(app, client):
    for n in range(3):
        assert api_signup(client, f"p{n}@example.com").status_code == 202
    dispatch_inline(app)
    sign_in_owner(app, client)
    slug = default_slug(app)
    client.get(f"/admin/magnets/{slug}/edit")
    steps, revision = draft(app, slug)
    removed = steps[1].id
    answer = client.post(
        f"/admin/magnets/{slug}/edit",
        data={**form_of([steps[0], *steps[2:]], revision, "publish"), "csrf_token": token(client)},
    )
    assert answer.status_code == 303 and "/publish/2" in answer.location
    page = client.get(answer.location).get_data(as_text=True)
    assert f'<th scope="row">{removed}</th><td>removed</td><td class="num">3</td>' in page
    answer = confirm(client, page)
    assert answer.status_code == 303
    again = client.post(
        f"/admin/magnets/{slug}/publish/2",
        data={"csrf_token": token(client)},
        follow_redirects=True,
    )
    assert "already published" in again.get_data(as_text=True)
    with app.app_context():
        open_rows = db.session.scalars(
            select(ScheduledEmail.step_id).where(ScheduledEmail.status == EmailStatus.PENDING)
        ).all()
        assert removed not in open_rows
    history = client.get(f"/admin/magnets/{slug}/history").get_data(as_text=True)
    assert "Version 2 (published)" in history and f"-id = &#34;{removed}&#34;" in history
    client.post(f"/admin/magnets/{slug}/history/1/restore", data={"csrf_token": token(client)})
    steps, _ = draft(app, slug)
    assert steps[1].id == removed
    audit = client.get("/admin/audit").get_data(as_text=True)
    assert f"published {slug} version 2" in audit and "from version 1" in audit


def test_archive_stops_its_emails_when_asked(app, client):
    sign_in_owner(app, client)
    slug = default_slug(app)
    assert new_magnet(client).status_code == 303
    answer = client.post(
        "/admin/magnets/squats/archive", data={"csrf_token": token(client), "stop_emails": "yes"}
    )
    assert answer.status_code == 303
    with app.app_context():
        magnet = db.session.scalar(select(Magnet).where(Magnet.slug == "squats"))
        assert magnet.archived_at is not None
    refused = client.post(
        f"/admin/magnets/{slug}/archive", data={"csrf_token": token(client)}, follow_redirects=True
    )
    assert "cannot be archived" in refused.get_data(as_text=True)


def test_a_magnet_managed_by_a_file_is_read_only(app, client):
    sign_in_owner(app, client)
    slug = default_slug(app)
    with app.app_context():
        magnet = db.session.scalar(select(Magnet).where(Magnet.slug == slug))
        magnet.managed_by_file = "/etc/leadmagnet/sequence.toml"
        db.session.commit()
    page = client.get(f"/admin/magnets/{slug}/edit").get_data(as_text=True)
    assert "managed by a file" in page and "<fieldset disabled" in page
    answer = client.post(f"/admin/magnets/{slug}/edit", data={"csrf_token": token(client)})
    assert answer.status_code == 409


def test_new_pages_need_the_owner(client):
    for path in ("/admin/magnets", "/admin/audit", "/admin/magnets/any/edit"):
        assert client.get(path).status_code == 302


def test_the_editor_script_is_our_own(app, client):
    sign_in_owner(app, client)
    slug = default_slug(app)
    page = client.get(f"/admin/magnets/{slug}/edit").get_data(as_text=True)
    scripts = re.findall(r"<script[^>]*>", page)
    assert scripts == ['<script src="/static/editor.js" defer>']
    policy = client.get(f"/admin/magnets/{slug}/edit").headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "'unsafe-inline'" not in policy.split("style-src")[0]
    assert Path(app.static_folder, "editor.js").is_file()


def test_a_replaced_guide_stays_served_to_links_already_sent_for_30_days(app, client, outbox):
    import time_machine

    from tests.web.test_guide_storage import guide_link

    old, new = SAMPLE_GUIDE.read_bytes(), KNEE_GUIDE.read_bytes()
    start = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        link = guide_link(app, outbox)  # ann's, sent with the old guide
    with time_machine.travel(start + timedelta(hours=1), tick=False):
        sign_in_owner(app, client)
        slug = default_slug(app)
        refused = client.post(
            f"/admin/magnets/{slug}/guide",
            data={"csrf_token": token(client), "guide": (BytesIO(b"%PDF-1.4 cut"), "x.pdf")},
            content_type="multipart/form-data",
        )
        assert refused.status_code == 422 and "cut short" in refused.get_data(as_text=True)
        answer = client.post(
            f"/admin/magnets/{slug}/guide",
            data={"csrf_token": token(client), "guide": (BytesIO(new), "knees.pdf")},
            content_type="multipart/form-data",
        )
        assert answer.status_code == 303
    with time_machine.travel(start + timedelta(days=29), tick=False):
        assert client.get(link).data == old
        assert api_signup(app.test_client(), "bob@example.com").status_code == 202
        dispatch_inline(app)
        bobs = GUIDE_LINK.search(parts(outbox_messages(outbox)[-1])[0]).group(1)
        assert client.get(bobs).data == new
    with time_machine.travel(start + timedelta(days=31, hours=2), tick=False):
        assert client.get(link).data == new
        sign_in_owner(app, client)  # a session lasts 12 hours
        page = client.get(f"/admin/magnets/{slug}/guide").get_data(as_text=True)
    assert "knees.pdf" in page and "current" in page and "(the guide before)" in page


def test_html_mode_edits_raw_templates_and_the_sandbox_refuses_a_reach(app, client):
    sign_in_owner(app, client)
    slug = default_slug(app)
    client.get(f"/admin/magnets/{slug}/edit")
    steps, revision = draft(app, slug)
    hostile = EditableStep(
        **{**steps[1].__dict__, "mode": "html", "html": "{{ ''.__class__.__mro__ }}"}
    )
    answer = client.post(
        f"/admin/magnets/{slug}/edit",
        data={**form_of([steps[0], hostile, *steps[2:]], revision), "csrf_token": token(client)},
    )
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert f"step &#39;{steps[1].id}&#39;" in page and "__class__" in page
    assert draft(app, slug)[1] == revision  # nothing saved
    edited = EditableStep(
        **{
            **steps[1].__dict__,
            "mode": "html",
            "html": steps[1].html.replace("<h1>", "<h1>Edited: "),
        }
    )
    answer = client.post(
        f"/admin/magnets/{slug}/edit",
        data={**form_of([steps[0], edited, *steps[2:]], revision), "csrf_token": token(client)},
    )
    assert answer.status_code == 303
    saved = draft(app, slug)[0][1]
    assert saved.mode == "html" and "<h1>Edited: " in saved.html


def test_archiving_with_stop_cancels_the_magnets_open_emails(app, client):
    sign_in_owner(app, client)
    assert new_magnet(client).status_code == 303
    assert api_signup(client, "ann@example.com").status_code == 202
    with app.app_context():
        magnet = db.session.scalar(select(Magnet).where(Magnet.slug == "squats"))
        person = db.session.scalar(select(Subscriber))
        db.session.add(Enrolment(subscriber_id=person.id, magnet_id=magnet.id))
        db.session.add(
            ScheduledEmail(
                subscriber_id=person.id,
                magnet_id=magnet.id,
                step_id="knees-over-toes",
                anchor_at=datetime.now(UTC),
                due_at=datetime.now(UTC),
                message_id="<m1@x>",
            )
        )
        db.session.commit()
    client.post(
        "/admin/magnets/squats/archive", data={"csrf_token": token(client), "stop_emails": "yes"}
    )
    with app.app_context():
        rows = db.session.execute(select(ScheduledEmail.magnet_id, ScheduledEmail.status)).all()
        squats = db.session.scalar(select(Magnet.id).where(Magnet.slug == "squats"))
        assert {(m == squats, s) for m, s in rows} == {(True, "cancelled"), (False, "pending")}
        stopped = db.session.scalar(select(Enrolment).where(Enrolment.magnet_id == squats))
        assert stopped.stop_reason == "archived"

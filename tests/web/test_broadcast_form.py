"""/admin/broadcasts/new: the owner writes a broadcast, counts its audience, reviews it with
a preview and a test send, then starts it."""

from __future__ import annotations

import re
from html import unescape

from sqlalchemy import func, select

from service.core.extensions import db
from service.core.models import Broadcast, ScheduledEmail
from tests.broadcast_helpers import add_subscribers
from tests.helpers import OWNER, outbox_messages, sign_in_owner
from tests.magnets import add_magnet

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def token(client, path: str = "/admin/broadcasts/new") -> str:
    return CSRF.search(client.get(path).get_data(as_text=True)).group(1)


def form(client, **extra) -> dict:
    return {"csrf_token": token(client), "subject": "", "mode": "markdown", "kind": "all", **extra}


def test_a_refused_form_keeps_the_text_and_says_why(app, client):
    sign_in_owner(app, client)
    written = "Hello {{ first_name }}, **news** {{ nope }}"
    answer = client.post("/admin/broadcasts/new", data=form(client, body_md=written, kind="took"))
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422 and 'role="alert"' in page
    assert "Write a subject." in page and "Choose at least one magnet" in page
    assert written in unescape(page)  # nothing lost
    late = client.post(
        "/admin/broadcasts/new",
        data=form(client, subject="Hi", body_md=written, when="at", at="2001-01-01T09:00"),
    ).get_data(as_text=True)
    assert "nope" in unescape(late) and "has passed" in late  # unknown variable, past time
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Broadcast)) == 0


def test_count_preview_test_send_then_start(app, client, outbox):
    add_subscribers(app, 3)
    sign_in_owner(app, client)
    assert "New broadcast" in client.get("/admin/broadcasts").get_data(as_text=True)
    body = "Hi {{ first_name }}, **big** news: [read](https://example.org/news)"
    counted = client.post(
        "/admin/broadcasts/new",
        data=form(client, subject="News for you", body_md=body, action="count"),
    ).get_data(as_text=True)
    assert "3 recipients now." in counted and body in unescape(counted)
    answer = client.post(
        "/admin/broadcasts/new",
        data=form(client, subject="News for you", body_md=body, action="review"),
    )
    assert answer.status_code == 303
    review_path = answer.location
    page = client.get(review_path).get_data(as_text=True)
    assert '<strong id="review-count">3</strong>' in page
    assert "sandbox srcdoc=" in page and "<strong>big</strong>" in unescape(page)
    broadcast_id = int(review_path.rstrip("/").split("/")[-2])
    tested = client.post(
        f"/admin/broadcasts/{broadcast_id}/test",
        data={"csrf_token": token(client, review_path)},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Sent to" in tested
    sent = outbox_messages(outbox)
    assert [m["To"].addresses[0].addr_spec for m in sent] == [OWNER[0]]
    assert sent[0]["Subject"] == "[Test] News for you"
    with app.app_context():  # the test wrote no row and counts in no figure
        assert db.session.scalar(select(func.count()).select_from(ScheduledEmail)) == 0
        assert db.session.get_one(Broadcast, broadcast_id).status == "draft"
    started = client.post(
        f"/admin/broadcasts/{broadcast_id}/confirm",
        data={"csrf_token": token(client, review_path)},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "sending to 3 recipients" in started and started.count("sending to 3") == 1
    twice = client.post(
        f"/admin/broadcasts/{broadcast_id}/confirm",
        data={"csrf_token": token(client)},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert 'role="alert"' in twice and "not a draft" in twice  # started once only
    with app.app_context():
        assert db.session.get_one(Broadcast, broadcast_id).status == "sending"
        assert db.session.scalar(select(func.count()).select_from(ScheduledEmail)) == 3


def test_a_broadcast_for_later_is_scheduled_in_the_sites_zone(app, client):
    sign_in_owner(app, client)
    answer = client.post(
        "/admin/broadcasts/new",
        data=form(client, subject="Later", body_md="Soon.", when="at", at="2099-06-01T09:30"),
    )
    assert answer.status_code == 303
    page = client.get(answer.location).get_data(as_text=True)
    assert "Scheduled for 2099-06-01 09:30" in page
    broadcast_id = int(answer.location.rstrip("/").split("/")[-2])
    client.post(f"/admin/broadcasts/{broadcast_id}/confirm", data={"csrf_token": token(client)})
    with app.app_context():
        row = db.session.get_one(Broadcast, broadcast_id)
        assert row.status == "scheduled" and row.send_at is not None


def test_the_new_pages_need_the_owner(client):
    assert client.get("/admin/broadcasts/new").status_code == 302
    assert client.post("/admin/broadcasts/1/test").status_code == 401  # nothing sent


def test_broadcast_test_sends_share_the_hourly_limit(app, client, outbox):
    sign_in_owner(app, client)
    answer = client.post("/admin/broadcasts/new", data=form(client, subject="Hi", body_md="Hello."))
    broadcast_id = int(answer.location.rstrip("/").split("/")[-2])
    for _ in range(10):
        client.post(f"/admin/broadcasts/{broadcast_id}/test", data={"csrf_token": token(client)})
    refused = client.post(
        f"/admin/broadcasts/{broadcast_id}/test",
        data={"csrf_token": token(client)},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "limited to 10 an hour" in refused and 'role="alert"' in refused
    assert len(outbox_messages(outbox)) == 10


def test_html_mode_needs_its_text_part_and_an_audience_of_a_magnet_counts_only_its_people(
    app, client
):
    add_subscribers(app, 2)  # they took no magnet through an enrolment
    knee = add_magnet(app)
    sign_in_owner(app, client)
    html = "<p>Hello <b>{{ first_name }}</b></p>"
    refused = client.post(
        "/admin/broadcasts/new", data=form(client, subject="Hi", mode="html", body_html=html)
    )
    assert refused.status_code == 422
    assert "write the text part too" in refused.get_data(as_text=True)
    assert html in unescape(refused.get_data(as_text=True))
    counted = client.post(
        "/admin/broadcasts/new",
        data=form(
            client,
            subject="Hi",
            mode="html",
            body_html=html,
            body_txt="Hello {{ first_name }}",
            kind="took",
            magnets=str(knee),
            action="count",
        ),
    ).get_data(as_text=True)
    assert "0 recipients now." in counted and 'value="html" checked' in counted

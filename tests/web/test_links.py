"""Links in a delivered email: unsubscribe (page and RFC 8058 one-click), guide download, health."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from service import create_app
from service.extensions import db
from service.models import ConsentRecord, EmailStatus, ScheduledEmail, Subscriber
from tests.conftest import SECRET
from tests.helpers import api_signup, dispatch_inline, outbox_messages, parts

GUIDE_LINK = re.compile(r"https://news\.example\.org(/guide/\S+)")
ONE_CLICK = "List-Unsubscribe=One-Click"


@dataclass(frozen=True)
class Links:
    unsubscribe: str  # paths on the app
    guide: str


@dataclass(frozen=True)
class State:
    status: str
    open_emails: int
    cancelled_emails: int
    withdrawals: int


@pytest.fixture
def links(app: Flask, client: FlaskClient, outbox: Path) -> Links:
    """The links of the guide email a new subscriber was sent."""
    assert api_signup(client, "ann@example.com", first_name="Ann").status_code == 202
    assert dispatch_inline(app) == ["sent"]
    [msg] = outbox_messages(outbox)
    text, _ = parts(msg)
    unsubscribe = urlsplit(msg["List-Unsubscribe"].strip("<>")).path
    match = GUIDE_LINK.search(text)
    assert match, "the guide email links to the guide"
    return Links(unsubscribe=unsubscribe, guide=match.group(1))


def state(app: Flask) -> State:
    with app.app_context():
        subscriber = db.session.scalars(select(Subscriber)).one()
        statuses = list(db.session.scalars(select(ScheduledEmail.status)))
        withdrawals = db.session.scalar(
            select(func.count()).where(ConsentRecord.action == "withdrawal")
        )
        return State(
            status=subscriber.status,
            open_emails=sum(s in EmailStatus.OPEN for s in statuses),
            cancelled_emails=statuses.count(EmailStatus.CANCELLED),
            withdrawals=withdrawals,
        )


def cookieless(app: Flask) -> FlaskClient:
    return app.test_client(use_cookies=False)


def forged(token: str) -> str:
    """The token with one character of its signature changed."""
    at = token.rindex(".") + 3
    return token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1 :]


def bad_tokens(token: str) -> dict[str, str]:
    return {
        "forged": forged(token),
        "truncated": token[:-4],
        "payload-only": token.split(".")[0],
        "garbage": "not-a-token",
        "dots": "...",
        "non-ascii": "ünïcode.tökén",
        "long": "x" * 2000,
    }


# --- unsubscribe ---------------------------------------------------------------------------


def test_get_and_head_of_the_unsubscribe_link_show_a_button_and_change_nothing(
    app: Flask, links: Links
):
    before = state(app)
    assert before.status == "active" and before.open_emails >= 1  # the next step of the drip
    page = cookieless(app).get(links.unsubscribe)
    assert page.status_code == 200
    assert "<button" in page.get_data(as_text=True)
    assert cookieless(app).head(links.unsubscribe).status_code == 200
    assert state(app) == before


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_a_one_click_post_without_cookies_unsubscribes_at_once_with_200(
    app: Flask, links: Links, content_type: str
):
    pending = state(app).open_emails
    client = cookieless(app)
    if content_type == "multipart/form-data":
        response = client.post(
            links.unsubscribe, data={"List-Unsubscribe": "One-Click"}, content_type=content_type
        )
    else:
        response = client.post(links.unsubscribe, data=ONE_CLICK, content_type=content_type)
    assert response.status_code == 200
    assert "Location" not in response.headers
    after = state(app)
    assert after.status == "unsubscribed"
    assert after.open_emails == 0 and after.cancelled_emails == pending >= 1
    assert after.withdrawals == 1


def test_repeating_the_one_click_post_is_harmless(app: Flask, links: Links):
    client = cookieless(app)
    for _ in range(3):
        response = client.post(
            links.unsubscribe, data=ONE_CLICK, content_type="application/x-www-form-urlencoded"
        )
        assert response.status_code == 200
    assert state(app).withdrawals == 1
    page = client.get(links.unsubscribe)
    assert page.status_code == 200 and "You are unsubscribed" in page.get_data(as_text=True)


def test_the_button_on_the_unsubscribe_page_unsubscribes(app: Flask, links: Links):
    client = cookieless(app)
    assert 'form method="post"' in client.get(links.unsubscribe).get_data(as_text=True)
    assert client.post(links.unsubscribe).status_code == 200  # the button sends an empty form
    assert state(app).status == "unsubscribed"


def test_after_unsubscribing_nothing_more_is_delivered(app: Flask, links: Links, outbox: Path):
    cookieless(app).post(links.unsubscribe, data=ONE_CLICK)
    assert dispatch_inline(app) == []
    assert len(outbox_messages(outbox)) == 1


def test_bad_unsubscribe_tokens_answer_404_and_change_nothing(app: Flask, links: Links):
    client = cookieless(app)
    before = state(app)
    token = links.unsubscribe.rsplit("/", 1)[1]
    for kind, bad in bad_tokens(token).items():
        for method in ("get", "head", "post"):
            response = getattr(client, method)(f"/unsubscribe/{bad}", data=ONE_CLICK)
            assert response.status_code == 404, (kind, method)
    assert state(app) == before


def test_a_guide_token_does_not_unsubscribe(app: Flask, links: Links):
    guide_token = links.guide.rsplit("/", 1)[1]
    assert cookieless(app).post(f"/unsubscribe/{guide_token}", data=ONE_CLICK).status_code == 404
    assert state(app).status == "active"


@pytest.fixture
def rotated_app(env: dict[str, str], app: Flask) -> Iterator[Flask]:
    """The same database and settings, with a new key in front of the old one."""
    rotated = create_app({**env, "SECRET_KEY": f"new-key-Xb7Qm2Vz9Kt4Lr8Wn3Hp6Js5Dc,{SECRET}"})
    rotated.config["TESTING"] = True
    yield rotated
    with rotated.app_context():
        db.session.remove()
        db.engine.dispose()


def test_links_signed_with_the_old_key_still_work_after_rotation(links: Links, rotated_app: Flask):
    client = cookieless(rotated_app)
    assert client.get(links.guide).status_code == 200
    assert client.get(links.unsubscribe).status_code == 200
    assert client.post(links.unsubscribe, data=ONE_CLICK).status_code == 200
    assert state(rotated_app).status == "unsubscribed"


# --- the guide -----------------------------------------------------------------------------


def test_the_guide_link_answers_a_pdf_and_counts_the_download(app: Flask, links: Links):
    client = cookieless(app)
    for _ in range(2):
        response = client.get(links.guide, follow_redirects=True)
        assert response.status_code == 200
        assert response.mimetype == "application/pdf"
        assert response.data.startswith(b"%PDF")
    with app.app_context():
        subscriber = db.session.scalars(select(Subscriber)).one()
        assert subscriber.guide_downloads == 2
        assert subscriber.first_download_at is not None
        assert subscriber.last_download_at >= subscriber.first_download_at


def test_bad_guide_tokens_answer_404(app: Flask, links: Links):
    client = cookieless(app)
    token = links.guide.rsplit("/", 1)[1]
    for kind, bad in bad_tokens(token).items():
        assert client.get(f"/guide/{bad}").status_code == 404, kind
    unsubscribe_token = links.unsubscribe.rsplit("/", 1)[1]
    assert client.get(f"/guide/{unsubscribe_token}").status_code == 404
    with app.app_context():
        assert db.session.scalars(select(Subscriber.guide_downloads)).one() == 0


# --- health --------------------------------------------------------------------------------


def test_healthz_answers_200_with_status_ok(client: FlaskClient):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"

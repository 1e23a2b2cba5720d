"""The double opt-in link: a GET shows a button (link scanners open every link), a POST
confirms, an expired link offers a new one."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from flask import Flask
from sqlalchemy import select

from service.clock import utcnow
from service.extensions import db
from service.models import ConsentRecord, Subscriber
from tests.conftest import make_app
from tests.helpers import api_signup, dispatch_inline, outbox_messages, parts

CONFIRM_LINK = re.compile(r"https://news\.example\.org(/confirm/\S+)")
START = utcnow()


@pytest.fixture
def doi_app(env: dict[str, str]) -> Iterator[Flask]:
    app = make_app({**env, "DOUBLE_OPT_IN": "true"})
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def link(doi_app: Flask, outbox: Path) -> str:
    """The path of the confirmation link a new subscriber was sent."""
    with time_machine.travel(START, tick=False):
        assert api_signup(doi_app.test_client(), "ann@example.com").status_code == 202
        assert dispatch_inline(doi_app) == ["sent"]
    [msg] = outbox_messages(outbox)
    return CONFIRM_LINK.search(parts(msg)[0]).group(1)  # type: ignore[union-attr]


def state(app: Flask) -> tuple[str, list[str]]:
    """The subscriber's status and the actions of their consent records."""
    with app.app_context():
        status = db.session.scalars(select(Subscriber.status)).one()
        actions = db.session.scalars(select(ConsentRecord.action).order_by(ConsentRecord.id))
        return status, list(actions)


def cookieless(app: Flask):
    return app.test_client(use_cookies=False)


def test_get_and_head_show_a_button_and_confirm_nothing(doi_app: Flask, link: str, outbox: Path):
    page = cookieless(doi_app).get(link)
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert '<form method="post">' in body and "<button" in body
    assert cookieless(doi_app).head(link).status_code == 200
    assert state(doi_app) == ("pending", ["consent"])
    assert dispatch_inline(doi_app) == []
    assert len(outbox_messages(outbox)) == 1


def test_a_post_without_cookies_or_csrf_token_confirms(doi_app: Flask, link: str, outbox: Path):
    client = cookieless(doi_app)
    response = client.post(link)
    assert response.status_code == 200
    assert "You are confirmed" in response.get_data(as_text=True)
    assert state(doi_app) == ("active", ["consent", "confirmation"])
    assert dispatch_inline(doi_app) == ["sent"]
    assert outbox_messages(outbox)[-1]["Subject"] == "Hi there, your free guide is here"
    assert client.post(link).status_code == 200  # the button pressed twice: harmless
    assert state(doi_app) == ("active", ["consent", "confirmation"])


def test_an_expired_link_answers_410_with_a_new_link_button_to_get_and_post(
    doi_app: Flask, link: str
):
    with time_machine.travel(START + timedelta(hours=73), tick=False):
        for method in ("get", "post"):
            page = getattr(cookieless(doi_app), method)(link)
            assert page.status_code == 410, method
            assert "Send me a new link" in page.get_data(as_text=True)
    assert state(doi_app) == ("pending", ["consent"])


def test_bad_confirmation_tokens_answer_404_and_confirm_nothing(doi_app: Flask, link: str):
    token = link.rsplit("/", 1)[1]
    bad = {"forged": token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), "garbage": "x.y.z"}
    client = cookieless(doi_app)
    for kind, value in bad.items():
        for method in ("get", "head", "post"):
            assert getattr(client, method)(f"/confirm/{value}").status_code == 404, (kind, method)
    assert state(doi_app) == ("pending", ["consent"])

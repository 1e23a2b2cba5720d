"""Pages reached through a link token show the address masked: links get forwarded."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient

from service.clock import utcnow
from tests.conftest import make_app
from tests.helpers import api_signup, dispatch_inline, outbox_messages, parts
from tests.web.test_link_tokens import ADDRESS, CONFIRM_LINK, latest_links

MASKED = "b***@example.com"


@pytest.fixture
def unsubscribe_path(app: Flask, client: FlaskClient, outbox: Path) -> str:
    api_signup(client, ADDRESS)
    dispatch_inline(app)
    return latest_links(outbox)[0]


def without_address(page) -> str:
    html = page.get_data(as_text=True)
    assert ADDRESS not in html and "bob.smith" not in html
    return html


def test_the_unsubscribe_pages_show_the_address_masked(client: FlaskClient, unsubscribe_path):
    before = client.get(unsubscribe_path)
    assert before.status_code == 200 and MASKED in without_address(before)
    after = client.post(unsubscribe_path)
    assert after.status_code == 200 and MASKED in without_address(after)
    again = client.get(unsubscribe_path)
    assert "You are unsubscribed" in again.get_data(as_text=True)
    assert MASKED in without_address(again)


def test_the_resubscribe_error_page_shows_the_address_masked(client: FlaskClient, unsubscribe_path):
    page = client.post(unsubscribe_path).get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf
    resubscribe = unsubscribe_path.replace("/unsubscribe/", "/resubscribe/")
    answer = client.post(resubscribe, data={"csrf_token": csrf.group(1)})
    assert answer.status_code == 422 and MASKED in without_address(answer)


def test_the_confirmation_pages_do_not_show_the_address(env: dict[str, str], outbox: Path):
    app = make_app({**env, "DOUBLE_OPT_IN": "true"})
    client = app.test_client()
    api_signup(client, ADDRESS)
    dispatch_inline(app)
    link = CONFIRM_LINK.search(parts(outbox_messages(outbox)[0])[0])
    assert link
    with time_machine.travel(utcnow() + timedelta(hours=73), tick=False):
        expired = client.get(link.group(1))
    assert expired.status_code == 410
    without_address(expired)
    without_address(client.get(link.group(1)))

"""The outbox pages: what a file:// EMAIL_URL wrote, listed and shown; 404 with SMTP."""

from __future__ import annotations

import html as htmllib
import os
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.settings import Settings, SettingsError
from tests.conftest import make_app
from tests.helpers import api_signup, dispatch_inline, sign_in_owner

LINK = re.compile(r'href="/outbox/([^"]+)"')


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """The owner, signed in: the one who may read the outbox."""
    owner = app.test_client()
    sign_in_owner(app, owner)
    return owner


def deliver(app, client, email: str, first_name: str = "Sam") -> None:
    assert api_signup(client, email, first_name=first_name).status_code == 202
    assert dispatch_inline(app) == ["sent"]


def test_the_list_shows_a_delivered_email(app, client, outbox):
    assert "No emails yet" in client.get("/outbox").get_data(as_text=True)
    deliver(app, client, "sam@example.com")
    page = client.get("/outbox")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Sam, your free guide is here" in body
    assert "sam@example.com" in body
    [name] = LINK.findall(body)
    assert (outbox / name).is_file()
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_the_list_is_newest_first(app, client, outbox):
    deliver(app, client, "first@example.com", "First")
    deliver(app, client, "second@example.com", "Second")
    files = sorted(outbox.glob("*.eml"))
    # Make the order unmistakable whatever the file system's clock resolution.
    for age, path in enumerate(files):
        stamp = 1_700_000_000 + age * 60
        os.utime(path, (stamp, stamp))
    body = client.get("/outbox").get_data(as_text=True)
    assert LINK.findall(body) == [path.name for path in reversed(files)]


def test_the_message_page_shows_headers_text_and_sandboxed_html(app, client, outbox):
    deliver(app, client, "zoe@example.com", "<script>alert(1)</script>")
    [name] = LINK.findall(client.get("/outbox").get_data(as_text=True))
    page = client.get(f"/outbox/{name}")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    for header in ("From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe"):
        assert f"<dt>{header}</dt>" in body
    assert "List-Unsubscribe=One-Click" in body
    text = re.search(r'<pre class="outbox-text">(.*?)</pre>', body, re.S)
    assert text and "Hi &lt;script&gt;alert(1)&lt;/script&gt;," in text.group(1)
    assert "<script" not in body  # the name never becomes markup on this page
    frame = re.search(r"<iframe ([^>]*)>", body)
    assert frame and re.search(r"\bsandbox\b(?!=)", frame.group(1))
    srcdoc = re.search(r'srcdoc="([^"]*)"', frame.group(1))
    assert srcdoc, "the email's HTML is escaped into srcdoc"
    email_html = htmllib.unescape(srcdoc.group(1))
    assert email_html.startswith("<!DOCTYPE html>") and "Download the guide" in email_html
    assert "&lt;script&gt;" in email_html  # still escaped once inside the email itself


@pytest.mark.parametrize(
    "path",
    [
        "/outbox/..",
        "/outbox/..%2Fsecret_key",
        "/outbox/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/outbox/../instance/secret_key",
        "/outbox/notes.txt",
        "/outbox/.hidden.eml",
        "/outbox/missing.eml",
    ],
)
def test_names_outside_the_listing_are_404(app, client, outbox, path):
    deliver(app, client, "sam@example.com")
    (outbox / "notes.txt").write_text("not an email")
    (outbox / ".hidden.eml").write_bytes((next(outbox.glob("*.eml"))).read_bytes())
    assert client.get(path).status_code == 404


def test_with_smtp_the_outbox_pages_do_not_exist(env, outbox):
    app = make_app(env)
    client = app.test_client()
    sign_in_owner(app, client)
    deliver(app, client, "sam@example.com")
    [name] = LINK.findall(client.get("/outbox").get_data(as_text=True))

    smtp_app = make_app({**env, "EMAIL_URL": "smtp://127.0.0.1:2525"})
    smtp_client = smtp_app.test_client()
    sign_in_owner(smtp_app, smtp_client)
    assert smtp_client.get("/outbox").status_code == 404
    assert smtp_client.get(f"/outbox/{name}").status_code == 404


def test_the_outbox_is_for_the_signed_in_owner_only(app, client):
    deliver(app, client, "sam@example.com")
    [name] = LINK.findall(client.get("/outbox").get_data(as_text=True))
    stranger = app.test_client()  # on this very machine (127.0.0.1), not signed in
    assert stranger.get("/outbox").status_code == 404
    assert stranger.get(f"/outbox/{name}").status_code == 404
    assert (
        client.get(f"/outbox/{name}", environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code
        == 200
    )


def test_outbox_open_locally_lets_this_machine_in_and_nobody_else(env):
    app = make_app({**env, "OUTBOX_OPEN_LOCALLY": "true"})
    client = app.test_client()
    for local in ("127.0.0.1", "::1"):
        assert client.get("/outbox", environ_base={"REMOTE_ADDR": local}).status_code == 200
    for far in ("203.0.113.9", "10.0.0.5"):
        assert client.get("/outbox", environ_base={"REMOTE_ADDR": far}).status_code == 404


def test_outbox_open_locally_is_refused_behind_a_proxy(env):
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({**env, "OUTBOX_OPEN_LOCALLY": "true", "TRUSTED_PROXIES": "1"})
    assert str(refused.value).startswith("leadmagnet: setting OUTBOX_OPEN_LOCALLY ")
    assert "TRUSTED_PROXIES" in str(refused.value)


@pytest.mark.parametrize("peer", ["203.0.113.9", "10.0.0.5"])
def test_a_forwarded_loopback_address_does_not_open_the_outbox(env, peer):
    # A client posing as this machine, reaching the app directly or through the proxy.
    app = make_app({**env, "TRUSTED_PROXIES": "1"})
    answer = app.test_client().get(
        "/outbox", headers={"X-Forwarded-For": "127.0.0.1"}, environ_base={"REMOTE_ADDR": peer}
    )
    assert answer.status_code == 404

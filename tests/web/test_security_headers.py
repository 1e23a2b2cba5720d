"""Security headers on every answer: CSP, nosniff, frames, referrers, HSTS over HTTPS only."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.web.security import CSP
from tests.conftest import make_app
from tests.helpers import api_signup, dispatch_inline, outbox_messages, sign_in_owner

ONE_CLICK = "List-Unsubscribe=One-Click"


def common(response) -> None:
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP in these tests


@pytest.mark.parametrize("path", ["/", "/thanks", "/healthz", "/no-such-page", "/login"])
def test_pages_carry_the_headers(client: FlaskClient, path: str):
    response = client.get(path)
    common(response)
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Content-Security-Policy"]


def test_the_default_policy_allows_no_inline_script_or_style(client: FlaskClient):
    policy = client.get("/").headers["Content-Security-Policy"]
    assert policy == CSP
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy


def test_the_signup_page_needs_nothing_the_policy_forbids(client: FlaskClient):
    page = client.get("/").get_data(as_text=True)
    # No inline script or style attribute: each would be refused by the browser.
    assert "<script>" not in page and "<script " not in page.replace("<script src=", "")
    assert " style=" not in page and "<style" not in page
    assert 'src="/static/signup.js"' in page


def test_the_json_api_answers_carry_the_headers(client: FlaskClient):
    response = api_signup(client, "ann@example.com")
    assert response.status_code == 202
    common(response)
    assert response.headers["Content-Security-Policy"] == CSP


def test_embed_js_stays_loadable_from_other_sites(client: FlaskClient):
    response = client.get("/embed.js")
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert "Cross-Origin-Embedder-Policy" not in response.headers
    assert "Cross-Origin-Opener-Policy" not in response.headers


def test_link_pages_send_no_referrer_and_one_click_still_works(
    app: Flask, client: FlaskClient, outbox
):
    api_signup(client, "ann@example.com")
    assert dispatch_inline(app) == ["sent"]
    [msg] = outbox_messages(outbox)
    unsubscribe = urlsplit(msg["List-Unsubscribe"].strip("<>")).path
    guide = next(
        urlsplit(word).path
        for word in msg.get_body(("plain",)).get_content().split()
        if "/guide/" in word
    )

    page = client.get(unsubscribe)
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] == "no-referrer"
    common(page)
    download = client.get(guide)
    assert download.status_code == 200 and download.mimetype == "application/pdf"
    assert download.headers["Referrer-Policy"] == "no-referrer"
    assert "Content-Security-Policy" not in download.headers  # the browser's PDF viewer

    one_click = app.test_client().post(
        unsubscribe, data=ONE_CLICK, content_type="application/x-www-form-urlencoded"
    )
    assert one_click.status_code == 200
    assert one_click.headers["Referrer-Policy"] == "no-referrer"
    assert client.get("/unsubscribe/forged-token").headers["Referrer-Policy"] == "no-referrer"
    assert client.get("/confirm/forged-token").headers["Referrer-Policy"] == "no-referrer"


def test_pages_with_their_own_policy_keep_it(app: Flask, client: FlaskClient, outbox):
    sign_in_owner(app, client)  # the outbox is the owner's
    api_signup(client, "ann@example.com")
    dispatch_inline(app)
    listing = client.get("/outbox")
    assert listing.status_code == 200
    # Email HTML in the outbox and in admin previews needs inline styles: their own policy.
    assert "'unsafe-inline'" in listing.headers["Content-Security-Policy"]
    assert listing.headers["Referrer-Policy"] == "no-referrer"
    message = client.get(f"/outbox/{next(outbox.glob('*.eml')).name}")
    assert message.status_code == 200
    assert message.headers["Content-Security-Policy"] == listing.headers["Content-Security-Policy"]

    for path in ("/admin/", "/admin/subscribers", "/admin/sequence"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert "'unsafe-inline'" in page.headers["Content-Security-Policy"], path
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers["X-Content-Type-Options"] == "nosniff"


def test_hsts_only_over_https(client: FlaskClient):
    secure = client.get("/", base_url="https://news.example.org")
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "Strict-Transport-Security" not in client.get("/").headers


def test_a_forwarded_proto_counts_only_behind_a_trusted_proxy(env: dict[str, str]):
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    direct = make_app(env).test_client().get("/", headers=forwarded)
    assert "Strict-Transport-Security" not in direct.headers
    proxied = make_app({**env, "TRUSTED_PROXIES": "1"}).test_client().get("/", headers=forwarded)
    assert proxied.headers["Strict-Transport-Security"] == "max-age=31536000"

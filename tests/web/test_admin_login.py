"""The owner's sign-in: one answer for every wrong guess, a fresh session, CSRF, rate limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from service import owners
from service.extensions import db
from service.models import Owner
from tests.conftest import make_app
from tests.helpers import CSRF, OWNER, sign_in_owner

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def token(client, path: str = "/login") -> str:
    return CSRF.search(client.get(path).get_data(as_text=True)).group(1)


def attempt(client, email: str, password: str, **extra: str):
    data = {"csrf_token": token(client), "email": email, "password": password, **extra}
    return client.post("/login", data=data)


@pytest.fixture
def owner(app):
    with app.app_context():
        owners.create(*OWNER)
    return OWNER


def test_the_password_is_kept_as_a_scrypt_hash(app, owner):
    with app.app_context():
        stored = db.session.query(Owner).one()
        assert stored.password_hash.startswith("scrypt:")
        assert OWNER[1] not in stored.password_hash
        assert stored.email == "owner@example.com"


def test_signing_in_opens_the_dashboard_and_records_the_login(app, client, owner):
    with time_machine.travel(START, tick=False):
        answer = attempt(client, "Owner@Example.com", OWNER[1])
        assert answer.status_code == 303 and answer.headers["Location"] == "/admin/"
        assert client.get("/admin/").status_code == 200
    with app.app_context():
        assert db.session.query(Owner).one().last_login_at == START


def test_every_wrong_guess_gets_the_same_answer(app, client, owner):
    guesses = [("owner@example.com", "wrong password here"), ("nobody@example.com", OWNER[1])]
    answers = [attempt(client, *guess) for guess in [*guesses, ("", "")]]
    # The page shows the address typed back (and a fresh CSRF token); apart from that, the
    # pages are identical.
    bodies = {
        CSRF.sub("", a.get_data(as_text=True).replace(f'value="{email}"', 'value=""'))
        for a, (email, _) in zip(answers, [*guesses, ("", "")], strict=True)
    }
    assert [a.status_code for a in answers] == [422, 422, 422]
    assert len(bodies) == 1  # nothing in the page tells which part was wrong
    assert "do not match" in bodies.pop()
    assert client.get("/admin/").status_code == 302


def test_signing_in_starts_a_fresh_session(app, client, owner):
    with client.session_transaction() as session:
        session["planted"] = "by someone else"
    before = token(client)
    attempt(client, *OWNER)
    with client.session_transaction() as session:
        assert "planted" not in session
        assert set(session) <= {"owner", "csrf_token"}
    assert token(client, "/admin/") != before  # the CSRF token was rotated too


def test_the_session_cookie_is_httponly_lax_and_secure_over_https(app, client, owner):
    answer = attempt(client, *OWNER)
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_the_cookie_is_not_secure_over_plain_http(env):
    app = make_app({**env, "PUBLIC_URL": "http://127.0.0.1:5000"})
    with app.app_context():
        owners.create(*OWNER)
    client = app.test_client()
    cookie = attempt(client, *OWNER).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "Secure" not in cookie


def test_logging_in_needs_the_csrf_token(app, client, owner):
    client.get("/login")
    answer = client.post("/login", data={"email": OWNER[0], "password": OWNER[1]})
    assert answer.status_code == 400
    assert client.get("/admin/").status_code == 302


def test_signing_out_is_a_post_with_csrf_and_ends_the_session(app, client, owner):
    sign_in_owner(app, client)
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400  # no token: still signed in
    assert client.get("/admin/").status_code == 200
    answer = client.post("/logout", data={"csrf_token": token(client, "/admin/")})
    assert answer.status_code == 303 and answer.headers["Location"] == "/login"
    assert client.get("/admin/").status_code == 302


def copy_of_the_cookie(app, client):
    """A second browser holding the same session cookie (copied, stolen)."""
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def test_signing_out_ends_a_copied_cookie_too(app, client, owner):
    sign_in_owner(app, client)
    thief = copy_of_the_cookie(app, client)
    assert thief.get("/admin/").status_code == 200
    client.post("/logout", data={"csrf_token": token(client, "/admin/")})
    assert thief.get("/admin/").status_code == 302
    assert thief.get("/outbox").status_code == 404
    # Signing in again makes a new session; the copy stays dead.
    sign_in_owner(app, client)
    assert client.get("/admin/").status_code == 200
    assert thief.get("/admin/").status_code == 302


def test_a_new_password_ends_every_session(app, client, owner):
    sign_in_owner(app, client)
    thief = copy_of_the_cookie(app, client)
    result = app.test_cli_runner().invoke(
        args=["admin", "password", "Owner@Example.com", "--password-stdin"],
        input="a brand new password\n",
    )
    assert result.exit_code == 0, result.output
    assert "every session of theirs has ended" in result.output
    assert client.get("/admin/").status_code == 302
    assert thief.get("/admin/").status_code == 302
    assert attempt(client, *OWNER).status_code == 422  # the old password is gone
    assert attempt(client, OWNER[0], "a brand new password").status_code == 303


def test_a_session_lasts_twelve_hours(app, client, owner):
    with time_machine.travel(START, tick=False) as traveller:
        sign_in_owner(app, client)
        traveller.shift(timedelta(hours=11, minutes=59))
        assert client.get("/admin/").status_code == 200
        traveller.shift(timedelta(minutes=2))
        assert client.get("/admin/").status_code == 302


@pytest.mark.parametrize(
    "target", ["https://evil.example.com/admin/", "//evil.example.com/admin/", "/outbox", "/\\evil"]
)
def test_after_signing_in_only_admin_pages_of_this_site_are_a_destination(
    app, client, owner, target
):
    answer = attempt(client, *OWNER, next=target)
    assert answer.headers["Location"] == "/admin/"


SPLIT = "/admin\r\nSet-Cookie: session=planted"


def test_a_destination_with_a_line_break_is_a_bad_request(app, client, owner):
    assert client.get("/login", query_string={"next": SPLIT}).status_code == 400
    assert attempt(client, *OWNER, next=SPLIT).status_code == 400
    sign_in_owner(app, client)
    assert client.get("/login", query_string={"next": SPLIT}).status_code == 400
    assert client.get("/login", query_string={"next": "/admin\u2028"}).status_code == 400


def test_after_signing_in_the_page_asked_for_opens(app, client, owner):
    answer = attempt(client, *OWNER, next="/admin/subscribers?status=active")
    assert answer.headers["Location"] == "/admin/subscribers?status=active"


def test_the_login_page_cannot_be_framed(app, client):
    page = client.get("/login")
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"


@pytest.fixture
def limited_app(env):
    app = make_app({**env, "RATELIMIT_ENABLED": "true"})
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def attempt_from(app, ip: str, email: str, password: str):
    client = app.test_client()
    where = {"REMOTE_ADDR": ip}
    page = client.get("/login", environ_base=where).get_data(as_text=True)
    data = {"csrf_token": CSRF.search(page).group(1), "email": email, "password": password}
    return client.post("/login", data=data, environ_base=where)


def test_wrong_passwords_from_elsewhere_do_not_lock_the_owner_out(limited_app):
    with limited_app.app_context():
        owners.create(*OWNER)
    with time_machine.travel(START, tick=False):
        # Someone who knows the owner's address: several clients, more wrong passwords than
        # any one client may try.
        for n in range(3):
            for _ in range(5):
                assert (
                    attempt_from(limited_app, f"192.0.2.{n + 1}", OWNER[0], "x").status_code == 422
                )
        # The owner, from a client that has not failed: in at once.
        assert (
            attempt_from(limited_app, "198.51.100.7", "OWNER@example.com", OWNER[1]).status_code
            == 303
        )


def test_five_failures_a_minute_for_one_address_from_one_client(limited_app):
    with limited_app.app_context():
        owners.create(*OWNER)
    client = limited_app.test_client()
    with time_machine.travel(START, tick=False) as traveller:
        for _ in range(5):
            assert attempt(client, OWNER[0], "wrong password").status_code == 422
        # Resting for this address, even with the right password (this client was guessing)...
        refused = attempt(client, "Owner@Example.com", OWNER[1])
        assert refused.status_code == 429
        assert OWNER[0] not in refused.get_data(as_text=True)
        # ...while this client may still try another address.
        assert attempt(client, "someone-else@example.com", "x").status_code == 422
        traveller.shift(timedelta(minutes=1))
        assert attempt(client, *OWNER).status_code == 303


def test_signing_in_successfully_uses_up_no_allowance(limited_app):
    with limited_app.app_context():
        owners.create(*OWNER)
    with time_machine.travel(START, tick=False):
        for _ in range(11):
            assert attempt(limited_app.test_client(), *OWNER).status_code == 303


def test_ten_tries_a_minute_per_client(limited_app):
    client = limited_app.test_client()
    with time_machine.travel(START, tick=False) as traveller:
        for n in range(10):
            assert attempt(client, f"guess{n}@example.com", "x").status_code == 422
        assert attempt(client, "guess-more@example.com", "x").status_code == 429
        other = limited_app.test_client()
        page = other.get("/login", environ_base={"REMOTE_ADDR": "192.0.2.9"})
        data = {"csrf_token": CSRF.search(page.get_data(as_text=True)).group(1), "email": "a@b.c"}
        assert (
            other.post("/login", data=data, environ_base={"REMOTE_ADDR": "192.0.2.9"}).status_code
            == 422
        )
        traveller.shift(timedelta(minutes=1))
        assert attempt(client, "guess-later@example.com", "x").status_code == 422

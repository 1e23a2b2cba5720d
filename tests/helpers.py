"""Small test helpers: fill the hosted form as a browser would, run the scheduler inline."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from service.delivery import deliver
from service.dispatch import run_pass

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client: FlaskClient) -> str:
    page = client.get("/").get_data(as_text=True)
    match = CSRF.search(page)
    assert match, "the signup page carries a CSRF token"
    return match.group(1)


def submit_form(client: FlaskClient, **fields: str):
    data = {"csrf_token": csrf_token(client), "consent": "yes", **fields}
    return client.post("/subscribe", data=data)


def api_signup(client: FlaskClient, email: str, **fields: object):
    return client.post("/api/subscribe", json={"email": email, "consent": True, **fields})


def dispatch_inline(app: Flask) -> list[str]:
    """One scheduler pass that delivers in this process; returns the outcomes."""
    outcomes: list[str] = []
    with app.app_context():
        run_pass(lambda ids: outcomes.extend(deliver(i) for i in ids))
    return outcomes


def outbox_messages(folder: Path) -> list[EmailMessage]:
    if not folder.exists():
        return []
    return [
        message_from_bytes(path.read_bytes(), policy=policy.default)  # type: ignore[misc]
        for path in sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
    ]


def parts(msg: EmailMessage) -> tuple[str, str]:
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


OWNER = ("owner@example.com", "correct horse battery staple")


def sign_in_owner(app: Flask, client: FlaskClient, email: str = OWNER[0], password: str = OWNER[1]):
    """Make the owner (once) and sign in through the login form, as a browser would."""
    from service import owners

    with app.app_context():
        if not any(o.email == email for o in owners.all_owners()):
            owners.create(email, password)
    page = client.get("/login").get_data(as_text=True)
    token = CSRF.search(page).group(1)  # type: ignore[union-attr]
    answer = client.post("/login", data={"csrf_token": token, "email": email, "password": password})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    return answer

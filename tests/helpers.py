"""Small test helpers: fill the hosted form as a browser would, run the scheduler inline."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.header import decode_header
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from service.sending.context import for_app
from service.sending.delivery import deliver
from service.sending.dispatch import run_pass

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
        ctx = for_app(app)
        run_pass(ctx, lambda ids: outcomes.extend(deliver(ctx, i) for i in ids))
    return outcomes


def outbox_messages(folder: Path) -> list[EmailMessage]:
    if not folder.exists():
        return []
    return [
        message_from_bytes(path.read_bytes(), policy=policy.default)  # type: ignore[misc]
        for path in sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
    ]


# Every header the service writes at the top of an email; visitor input may add none.
OUR_HEADERS = {
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"mime-version",
    b"content-type",
    b"dkim-signature",
}


def top_header_names(raw: bytes) -> list[bytes]:
    """The names of the top-level header block, read from the wire bytes as a strict
    receiver would: CRLF lines only, a continuation starts with a space or a tab, and
    every other line up to the first empty one is `name: value`."""
    head, blank, _body = raw.partition(b"\r\n\r\n")
    assert blank, "no empty line ends the header block"
    assert b"\r" not in head.replace(b"\r\n", b"") and b"\n" not in head.replace(b"\r\n", b"")
    names = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            continue
        name, colon, _value = line.partition(b":")
        assert colon and name and name == name.strip(), f"not a header line: {line!r}"
        names.append(name.lower())
    return names


def assert_our_headers_only(raw: bytes) -> None:
    """One To, one Subject, one Content-Type, and no header that is not ours."""
    names = top_header_names(raw)
    assert set(names) <= OUR_HEADERS, set(names) - OUR_HEADERS
    for name in (b"to", b"subject", b"content-type", b"from"):
        assert names.count(name) == 1, (name, names)


def parts(msg: EmailMessage) -> tuple[str, str]:
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


OWNER = ("owner@example.com", "correct horse battery staple")


def sign_in_owner(app: Flask, client: FlaskClient, email: str = OWNER[0], password: str = OWNER[1]):
    """Make the owner (once) and sign in through the login form, as a browser would."""
    from service.people import owners

    with app.app_context():
        if not any(o.email == email for o in owners.all_owners()):
            owners.create(email, password)
    page = client.get("/login").get_data(as_text=True)
    token = CSRF.search(page).group(1)  # type: ignore[union-attr]
    answer = client.post("/login", data={"csrf_token": token, "email": email, "password": password})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    return answer


def display_name(data: bytes) -> str:
    """The To display name as an RFC 2047 decoder reads it: Python's address parser keeps the
    space between two encoded words, which RFC 2047 §6.2 says to drop, and turns a tab in
    one into a space."""
    head = data.partition(b"\r\n\r\n")[0].decode("utf-8").replace("\r\n ", " ")
    [value] = [line[4:] for line in head.split("\r\n") if line.startswith("To: ")]
    phrase = value.rpartition(" <")[0] if value.endswith(">") else ""
    if "=?" in phrase:
        return b"".join(chunk for chunk, _ in decode_header(phrase)).decode("utf-8")  # type: ignore[misc]
    return BytesParser(policy=policy.default).parsebytes(data)["To"].addresses[0].display_name

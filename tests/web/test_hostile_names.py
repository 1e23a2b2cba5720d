"""Encoded-word and Unicode-trick names through both signup endpoints, with and without
double opt-in, down to the bytes of every email delivered (issue 12, point 1)."""

from __future__ import annotations

import base64
import re
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from flask import Flask

from service.core.extensions import db
from tests.conftest import make_app
from tests.helpers import (
    api_signup,
    assert_our_headers_only,
    dispatch_inline,
    display_name,
    submit_form,
)

CONFIRM_LINK = re.compile(r"https://news\.example\.org(/confirm/[^\s\"<]+)")
REFUSED = None


def b_word(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


LONG_NAME = (
    "Zoë Ångström-Łukasiewicz Ίριδα 陳美玲 Ольга Þórðardóttir "
    "Ñúñez Øster Çelik Şahin Ünal Ğül Ævarsdóttir"
)
SPECIALS = 'Ann "A,B" <ann@evil.example>; \\ Smith'
FULLWIDTH = "\uff1d\uff1futf-8\uff1fq\uff1fEve=0D=0AX-Evil:_1\uff1f\uff1d"
# (what the visitor typed, the To display name expected, or REFUSED)
NAMES = {
    "q-encoded-crlf-bcc": ("=?utf-8?q?Eve=0D=0ABcc:_attacker@evil.example?=", REFUSED),
    "b-encoded-crlf-content-type-and-body": (
        b_word("Eve\r\nContent-Type: text/html\r\n\r\n<h1>Your account is locked</h1>"),
        REFUSED,
    ),
    "mixed-case-encoded-word": ("=?UTF-8?Q?Eve=0d=0aX-Evil:_1?=", REFUSED),
    "encoded-word-split-by-folding-whitespace": (
        "=?utf-8?q?Eve=0D?= =?utf-8?q?=0ABcc:_x@evil.example?=",
        REFUSED,
    ),
    "partial-encoded-word": ("Eve =?utf-8?", REFUSED),
    "fullwidth-encoded-word": (FULLWIDTH, REFUSED),
    "line-separator": ("Eve\u2028Bcc: x@evil.example", REFUSED),
    "paragraph-separator": ("Eve\u2029X-Evil: 1", REFUSED),
    "next-line": ("Eve\x85X-Evil: 1", REFUSED),
    "specials": (SPECIALS, SPECIALS),
    "equals-and-question-mark-apart": ("Q&A? = Ann", "Q&A? = Ann"),
    "long-non-ascii-near-100": (LONG_NAME, LONG_NAME),
}
ADDRESSES = {"form@example.com", "api@example.com"}


def delivered(outbox: Path) -> list[bytes]:
    return [path.read_bytes() for path in sorted(outbox.glob("*.eml"))] if outbox.exists() else []


def confirm_everything(app: Flask, outbox: Path) -> None:
    """Follow every confirmation link delivered, as the people would (the page's button)."""
    client = app.test_client(use_cookies=False)
    for raw in delivered(outbox):
        text = raw.decode("utf-8", "replace").replace("=\r\n", "")
        for path in set(CONFIRM_LINK.findall(text)):
            assert client.post(path).status_code == 200


def test_the_long_name_is_near_the_limit():
    assert 95 <= len(LONG_NAME) <= 100


@pytest.mark.parametrize("double_opt_in", [False, True], ids=["direct", "double-opt-in"])
@pytest.mark.parametrize(("name", "expected"), NAMES.values(), ids=NAMES.keys())
def test_a_name_shapes_no_header_and_no_mime_structure_of_any_delivered_email(
    env: dict[str, str], outbox: Path, name: str, expected: str | None, double_opt_in: bool
):
    app = make_app({**env, "DOUBLE_OPT_IN": "true" if double_opt_in else "false"})
    client = app.test_client()
    form = submit_form(client, email="form@example.com", first_name=name)
    api = api_signup(client, "api@example.com", first_name=name)
    if expected is REFUSED:
        assert form.status_code == 422
        assert 'id="first_name-error"' in form.get_data(as_text=True)
        assert api.status_code == 422
        assert set(api.get_json()["errors"]) == {"first_name"}
        assert dispatch_inline(app) == []
        assert delivered(outbox) == []
        return
    assert (form.status_code, api.status_code) == (303, 202)
    dispatch_inline(app)
    if double_opt_in:
        confirm_everything(app, outbox)
        dispatch_inline(app)
    emails = delivered(outbox)
    assert len(emails) == (4 if double_opt_in else 2)  # (a confirmation and) the guide each
    for raw in emails:
        assert_our_headers_only(raw)
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        assert msg.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
        assert not msg.defects
        [to] = msg["To"].addresses
        assert display_name(raw) == expected  # as RFC 2047 decoders read it (not Python's)
        assert to.addr_spec in ADDRESSES
    with app.app_context():
        db.session.remove()
        db.engine.dispose()

"""Tricky email addresses and first names through both signup endpoints, then into the outbox."""

from __future__ import annotations

import html
import re
from email.message import EmailMessage
from pathlib import Path
from typing import Final

import pytest
from email_validator import EmailNotValidError, validate_email
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from service.core.extensions import db
from service.core.models import Subscriber
from tests.helpers import (
    api_signup,
    dispatch_inline,
    display_name,
    outbox_messages,
    parts,
    submit_form,
)

REFUSED: Final = True  # the verdict of an address email-validator refuses

LONG_DOMAIN = "b" * 60 + "." + "c" * 60 + "." + "d" * 63 + ".com"  # 189 characters
# (id, what the visitor typed, the normalized address stored, or REFUSED)
ADDRESSES: list[tuple[str, str, str | bool]] = [
    ("idn-cjk", "用户@例子.广告", "用户@例子.广告"),
    ("idn-latin", "josé@bücher.de", "josé@bücher.de"),
    ("idn-punycode-domain-decoded", "a@xn--bcher-kva.de", "a@bücher.de"),
    ("idn-cjk-domain", "a@例子.测试", "a@例子.测试"),
    ("unicode-local-part", "ünïcode@example.com", "ünïcode@example.com"),
    (
        "fullwidth-domain-folded",
        "a@\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25.com",
        "a@example.com",
    ),
    ("plus-addressing", "ann+news@example.com", "ann+news@example.com"),
    ("uppercase-domain-lowered-local-kept", "Ann.Smith@Example.COM", "Ann.Smith@example.com"),
    ("surrounding-spaces-trimmed", "  ann@example.com  ", "ann@example.com"),
    ("surrounding-tab-and-crlf-trimmed", "\tbea@example.com\r\n", "bea@example.com"),
    ("atext-specials", "a!b%c@example.com", "a!b%c@example.com"),
    ("one-letter-tld", "a@b.c", "a@b.c"),
    ("local-part-64", "l" * 64 + "@example.com", "l" * 64 + "@example.com"),
    # email-validator 2.x enforces the 64-octet local part only in strict mode.
    ("local-part-65-allowed-by-default", "m" * 65 + "@example.com", "m" * 65 + "@example.com"),
    ("domain-label-63", "a@" + "b" * 63 + ".com", "a@" + "b" * 63 + ".com"),
    ("domain-label-64", "a@" + "b" * 64 + ".com", REFUSED),
    ("overall-254", "a" * 64 + "@" + LONG_DOMAIN, "a" * 64 + "@" + LONG_DOMAIN),
    ("overall-255", "a" * 65 + "@" + LONG_DOMAIN, REFUSED),
    ("quoted-local-with-space", '"john doe"@example.com', REFUSED),
    ("quoted-local-plain", '"john.doe"@example.com', REFUSED),
    ("consecutive-dots-local", "a..b@example.com", REFUSED),
    ("leading-dot-local", ".a@example.com", REFUSED),
    ("trailing-dot-local", "a.@example.com", REFUSED),
    ("trailing-dot-domain", "a@example.com.", REFUSED),
    ("leading-dot-domain", "a@.example.com", REFUSED),
    ("consecutive-dots-domain", "a@example..com", REFUSED),
    ("hyphen-starts-domain", "a@-example.com", REFUSED),
    ("crlf-bcc-injection", "a@example.com\r\nBcc: victim@example.org", REFUSED),
    ("lf-header-injection", "a@example.com\nX-Injected: 1", REFUSED),
    ("no-tld", "a@localhost", REFUSED),
    ("ipv4-literal", "a@[127.0.0.1]", REFUSED),
    ("ipv6-literal", "a@[IPv6:::1]", REFUSED),
    ("bare-ipv4-domain", "a@123.123.123.123", REFUSED),
    ("reserved-tld-invalid", "a@example.invalid", REFUSED),
    ("reserved-tld-local", "a@example.local", REFUSED),
    ("missing-at", "annexample.com", REFUSED),
    ("two-ats", "a@b@example.com", REFUSED),
    ("empty", "", REFUSED),
    ("only-spaces", "   ", REFUSED),
    ("space-inside-local", "a b@example.com", REFUSED),
    ("space-inside-domain", "a@exa mple.com", REFUSED),
    ("display-name", "Ann <ann@example.com>", REFUSED),
    ("angle-brackets", "<a@example.com>", REFUSED),
    ("two-addresses", "a@example.com,b@example.com", REFUSED),
    ("semicolon-local", "a;b@example.com", REFUSED),
    ("zero-width-space", "a\u200b@example.com", REFUSED),
    ("bidi-override", "\u202ea@example.com", REFUSED),
    ("nul-in-local", "a\x00@example.com", REFUSED),
    ("nul-in-domain", "a@example.com\x00", REFUSED),
]
ACCEPTED = {expected for _, _, expected in ADDRESSES if expected is not REFUSED}
EMAIL_ERROR = re.compile(r'<p class="error" id="email-error">(.*?)</p>', re.S)


def oracle(raw: str) -> str | bool:
    """email-validator's default verdict, after trimming surrounding whitespace as the
    service (and a browser's email input) does."""
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        return REFUSED


def stored_emails(app: Flask) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(Subscriber.email).order_by(Subscriber.id)))


def to_address(msg: EmailMessage) -> str:
    """The To address; the parser leaves raw UTF-8 (SMTPUTF8) header bytes surrogate-escaped."""
    [to] = msg["To"].addresses
    return to.addr_spec.encode("utf-8", "surrogateescape").decode("utf-8")


def form_email_error(page: str) -> str | None:
    match = EMAIL_ERROR.search(page)
    return html.unescape(match.group(1)).strip() if match else None


def test_the_table_is_long_enough_and_agrees_with_email_validator():
    assert len(ADDRESSES) >= 30
    assert len({case_id for case_id, _, _ in ADDRESSES}) == len(ADDRESSES)
    disagreements = {
        case_id: (expected, oracle(raw))
        for case_id, raw, expected in ADDRESSES
        if oracle(raw) != expected
    }
    assert disagreements == {}


@pytest.mark.parametrize(
    ("raw", "expected"), [c[1:] for c in ADDRESSES], ids=[c[0] for c in ADDRESSES]
)
def test_both_endpoints_give_each_address_its_verdict(
    app: Flask, client: FlaskClient, raw: str, expected: str | bool
):
    form = submit_form(client, email=raw)
    api = api_signup(client, raw)
    if expected is REFUSED:
        assert form.status_code == 422
        assert api.status_code == 422
        message = api.get_json()["errors"]["email"]
        assert isinstance(message, str) and message
        assert form_email_error(form.get_data(as_text=True)) == message
        assert stored_emails(app) == []
    else:
        assert form.status_code == 303
        assert api.status_code == 202
        assert api.get_json() == {"status": "accepted"}
        assert stored_emails(app) == [expected]


@pytest.mark.parametrize(
    "value",
    [123, 1.5, None, True, ["a@example.com"], {"email": "a@example.com"}],
    ids=["number", "float", "null", "boolean", "list", "object"],
)
def test_a_json_email_that_is_not_a_string_is_an_error_on_email(
    app: Flask, client: FlaskClient, value: object
):
    response = client.post("/api/subscribe", json={"email": value, "consent": True})
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"email"}
    assert stored_emails(app) == []


def test_delivering_the_whole_table_injects_no_header_and_mails_only_accepted_addresses(
    app: Flask, client: FlaskClient, outbox: Path
):
    for _, raw, expected in ADDRESSES:
        statuses = (submit_form(client, email=raw).status_code, api_signup(client, raw).status_code)
        assert statuses == ((422, 422) if expected is REFUSED else (303, 202)), raw
    assert set(stored_emails(app)) == ACCEPTED

    outcomes = dispatch_inline(app)
    assert outcomes == ["sent"] * len(ACCEPTED)
    messages = outbox_messages(outbox)
    assert len(messages) == len(ACCEPTED)
    recipients = []
    for msg in messages:
        for part in msg.walk():
            names = {name.lower() for name in part}  # the header names
            assert not names & {"bcc", "cc", "x-injected"}, names
        # An ASCII local part at an IDN domain is addressed in its punycode (xn--) form.
        recipients.append(oracle(to_address(msg)))
    assert sorted(recipients) == sorted(ACCEPTED)
    assert "victim@example.org" not in recipients


# --- first names -------------------------------------------------------------------------

REFUSED_NAMES = {
    "101-characters": "n" * 101,
    "nul": "Zo\x00e",
    "crlf-bcc": "\r\nBcc: x@y.z",
    "crlf-bcc-after-name": "Zoë\r\nBcc: x@y.z",
    "tab": "Zoë\tMay",
    "trailing-tab": "Zoë\t",
    "bidi-override": "Zoë\u202eevil",
    "line-separator": "Zoë\u2028May",
    "escape-character": "Zoë\x1b[31m",
    "encoded-word": "=?utf-8?q?Zo=C3=AB?=",
    "encoded-word-start-only": "Zoë =?",
}
ACCEPTED_NAMES = {
    "100-characters": "n" * 100,
    "100-accented-characters": "é" * 100,
    "script-tag": "<script>alert(1)</script>",
    "quotes": 'Zoë "the coach" O\'Neil',
    "emoji": "Zoë 💪🏽",
    "rtl-script": "زينب",
    "equals-and-question-mark-apart": "Q&A? = Zoë",
}


@pytest.mark.parametrize("name", REFUSED_NAMES.values(), ids=REFUSED_NAMES.keys())
def test_a_bad_first_name_is_an_error_on_first_name_at_both_endpoints(
    app: Flask, client: FlaskClient, name: str
):
    api = api_signup(client, "named@example.com", first_name=name)
    assert api.status_code == 422
    assert set(api.get_json()["errors"]) == {"first_name"}
    form = submit_form(client, email="named@example.com", first_name=name)
    assert form.status_code == 422
    assert 'id="first_name-error"' in form.get_data(as_text=True)
    assert stored_emails(app) == []


def test_an_encoded_word_in_a_first_name_is_refused_with_a_clear_message(client: FlaskClient):
    api = api_signup(client, "named@example.com", first_name="=?utf-8?b?Wm/Dqw==?=")
    assert api.get_json()["errors"] == {"first_name": 'The first name must not contain "=?".'}


def test_a_lone_surrogate_in_json_is_an_error_on_first_name_not_a_500(
    app: Flask, client: FlaskClient
):
    """JSON can carry "\\ud800", which is no character: no database can store it."""
    body = '{"email": "s@example.com", "first_name": "Eve\\ud800", "consent": true}'
    response = client.post("/api/subscribe", data=body, content_type="application/json")
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"first_name"}
    body = '{"email": "s@example.com", "page": "https://x.example/\\ud800", "consent": true}'
    response = client.post("/api/subscribe", data=body, content_type="application/json")
    assert response.status_code == 202
    assert stored_emails(app) == ["s@example.com"]


@pytest.mark.parametrize("name", ACCEPTED_NAMES.values(), ids=ACCEPTED_NAMES.keys())
def test_an_accepted_first_name_reaches_the_guide_email_escaped_in_one_to_header(
    app: Flask, client: FlaskClient, outbox: Path, name: str
):
    assert submit_form(client, email="named@example.com", first_name=name).status_code == 303
    assert dispatch_inline(app) == ["sent"]
    [msg] = outbox_messages(outbox)
    text, body = parts(msg)
    assert name in text
    assert name in html.unescape(body)
    assert "<script>" not in body
    if "<" in name:
        assert html.escape(name, quote=False) in body
    [to] = msg["To"].addresses
    [raw] = outbox.glob("*.eml")
    # The name as RFC 2047 decoders read it: Python's keeps the space between encoded words.
    assert (display_name(raw.read_bytes()), to.addr_spec) == (name, "named@example.com")
    header_block = raw.read_bytes().split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    to_at = next(i for i, line in enumerate(header_block) if line.lower().startswith(b"to:"))
    # A long name is folded (RFC 5322: lines within 78) but stays one header: every line up
    # to the next field is a continuation, and none of them starts a field of its own.
    field = re.compile(rb"^[!-9;-~]+:")
    rest = header_block[to_at + 1 :]
    continued = next((i for i, line in enumerate(rest) if not line[:1].isspace()), len(rest))
    assert all(not field.match(line.lstrip()) for line in rest[:continued])
    assert continued < len(rest) and field.match(rest[continued]), "the To header ends at a field"

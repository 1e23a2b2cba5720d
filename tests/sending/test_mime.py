"""The MIME writer: what EmailMessage gave (tests/sending/reference_message.py), parsed back
the same, and no visitor input ever makes a header line, a MIME part or a line break of its
own. The messages are the send path's own: compose() for every step and the confirmation."""

from __future__ import annotations

import binascii
import re
import smtplib
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.parser import BytesParser

import dkim
import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.content.rendering import RenderedEmail
from service.content.sequence import load_sequence
from service.core.dkim_key import DkimKey
from service.core.models import Purpose, ScheduledEmail, Subscriber
from service.core.settings import DEFAULT_SEQUENCE_FILE
from service.sending.compose import compose, render_for, smtp_address
from service.sending.context import for_app
from service.sending.message import new_message_id, one_line
from service.sending.mime import Outgoing, message_bytes
from tests.helpers import display_name
from tests.sending.reference_message import build_message, serialize
from tests.sending.test_dkim import DOMAIN, SELECTOR, dns_for, openssl

SEQUENCE = load_sequence(DEFAULT_SEQUENCE_FILE, DEFAULT_SEQUENCE_FILE.parent)
CASES = [(step.id, Purpose.DRIP) for step in SEQUENCE.steps] + [("confirm", Purpose.CONFIRM)]
IDS = [case[0] for case in CASES]
HEADERS = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
]
PARSER = BytesParser(policy=policy.default)
HOSTILE_NAMES = [
    "Sam",
    "Zoë",
    'Zoë "the coach" O\'Neil, Jr. <x@example.org>',
    "=?utf-8?q?=0D=0ABcc:_victim@example.org?=",
    "=?utf-8?b?DQpCY2M6IHZpY3RpbUBleGFtcGxlLm9yZw==?=",
    '"=?utf-8?q?=0D=0AContent-Type:_text/html?="',
    "Sam =?iso-8859-1?q?=0A?= Smith",
    "a\u2028Bcc: victim@example.org",
    "a\x85Bcc: victim@example.org",
    "a\u2029b\x0bc\x0cd\x1ce\x1df\x1eg",
    "Sam\tSmith",
    "\x00",
    "<script>alert(1)</script>",
    "a,b;c:d@e<f>g[h]i(j)k\\l.m",
    '"',
    "\\",
    "  Sam  ",
    "Sam  Smith",
    ".",
    "@",
    "",
    "--=_boundary--",
    "x" * 100,
    "Maria " * 16,
    "Zoë" * 100,
    "😀" * 40,
    "\u202eevil",
]
# Names the signup form lets through: no control or separator characters, at most 100.
NAMES = (
    st.text(st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=100)
    .map(str.strip)
    .filter(bool)
)


def sample(
    app: Flask, step_id: str, purpose: str, name: str | None, email: str
) -> tuple[RenderedEmail, bytes, Outgoing]:
    """The email as compose() makes it for the transport, and EmailMessage's bytes of it."""
    with app.app_context():
        ctx = replace(for_app(app), clock=lambda: NOW)
        subscriber = Subscriber(
            id=7, token_key="sample", first_name=name, email=email, created_at=NOW
        )
        scheduled = ScheduledEmail(
            purpose=purpose, step_id=step_id, message_id=new_message_id(ctx.sender)
        )
        rendered = render_for(ctx, scheduled, subscriber)
        assert rendered is not None
        msg, sender, recipient = compose(ctx, scheduled, subscriber, rendered)
    assert (msg.sender, msg.recipient, msg.date) == (sender, recipient, NOW)
    reference = build_message(
        msg.rendered,
        mail_from=msg.mail_from,
        to_address=msg.to_address,
        to_name=msg.to_name,
        message_id=msg.message_id,
        unsubscribe_url=msg.unsubscribe_url,
        date=msg.date,
    )
    return msg.rendered, serialize(reference, sender, recipient), msg


NOW = datetime(2026, 11, 30, 9, 5, 7, tzinfo=UTC)


def same_message(old: bytes | None, new: bytes, rendered: RenderedEmail, name: str | None):
    """Parsed back, the two say the same: the headers, their decoded values, the parts. The
    To display name and the Subject are checked against what went in: EmailMessage drops
    spaces of some names, folds long ones badly and lets an encoded word in a name through,
    so that its receiver decodes it (CVE-2024-6923). Where the old bytes carry a header or
    part of their own, only the new ones are checked."""
    b = PARSER.parsebytes(new)
    assert b.keys() == HEADERS
    assert display_name(new) == one_line(name or "").strip()
    assert str(b["Subject"]) == one_line(rendered.subject)
    new_parts = list(b.iter_parts())
    assert [part.get_content().replace("\r\n", "\n") for part in new_parts] == [
        as_lines(rendered.text),
        as_lines(rendered.html),
    ]
    assert not b.defects and not any(part.defects for part in new_parts)
    a = PARSER.parsebytes(old) if old is not None else None
    if a is None or a.keys() != HEADERS or len(list(a.iter_parts())) != 2:
        return
    for field in ("From", "Date", "Message-ID", "List-Unsubscribe"):
        assert str(b[field]) == str(a[field]), field
    # message.py writes a leading space plain, and a parser drops it: the writer encodes it.
    assert str(b["Subject"]).lstrip() == str(a["Subject"]).lstrip()
    assert b["List-Unsubscribe-Post"] == a["List-Unsubscribe-Post"]
    assert b["To"].addresses[0].addr_spec == a["To"].addresses[0].addr_spec
    assert b.get_content_type() == a.get_content_type() == "multipart/alternative"
    for x, y in zip(a.iter_parts(), new_parts, strict=True):
        assert y.get_content_type() == x.get_content_type()
        assert y.get_content_charset() == x.get_content_charset() == "utf-8"
        assert y["Content-Transfer-Encoding"] == x["Content-Transfer-Encoding"]
        assert y.get_content() == x.get_content()


def as_lines(text: str) -> str:
    """A body as a text part carries it: CR, LF and CRLF as line ends, one at the end."""
    lines = re.split(r"\r\n|\r|\n", text)
    return "\n".join(lines[:-1] if lines[-1] == "" else lines) + "\n"


def well_formed(data: bytes) -> None:
    """CRLF only; no line over 998; header lines within 78 but for the unsubscribe URL and an
    address; valid quoted-printable bodies, lines within 76."""
    assert b"\n" not in data.replace(b"\r\n", b"") and b"\r" not in data.replace(b"\r\n", b"")
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        assert len(line) <= 998
        assert all(len(word) <= 75 for word in re.findall(rb"=\?[^?]+\?[qb]\?[^?]*\?=", line))
        if not line.startswith((b"List-Unsubscribe:", b"DKIM-Signature:")):
            assert len(line) <= 78 or b"@" in line.rpartition(b" ")[2], line
    boundary = re.search(rb'boundary="([^"]+)"', head).group(1)  # type: ignore[union-attr]
    parts = body.split(b"--" + boundary)
    assert parts[0] == b"" and parts[-1] == b"--\r\n" and len(parts) == 4
    for part in parts[1:3]:
        part_head, _, encoded = part.partition(b"\r\n\r\n")
        assert b"Content-Transfer-Encoding: quoted-printable" in part_head
        for line in encoded.split(b"\r\n"):
            assert len(line) <= 76 and re.fullmatch(rb"(?:[\t !-<>-~]|=[0-9A-F]{2})*=?", line)
            assert not line.endswith((b" ", b"\t"))
        assert binascii.a2b_qp(encoded)  # decodes


@pytest.mark.parametrize("name", HOSTILE_NAMES)
@pytest.mark.parametrize(("step_id", "purpose"), CASES, ids=IDS)
def test_the_writer_says_what_email_message_says(render_app, step_id, purpose, name):
    rendered, old, msg = sample(render_app, step_id, purpose, name or None, "sam@example.com")
    new = msg.as_bytes()
    same_message(old, new, rendered, name)
    well_formed(new)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=NAMES)
def test_for_any_name_the_writer_says_what_email_message_says(render_app, name):
    for step_id, purpose in CASES:
        rendered, old, msg = sample(render_app, step_id, purpose, name, "sam@example.com")
        new = msg.as_bytes()
        same_message(old, new, rendered, name)
        well_formed(new)


@pytest.mark.parametrize("email", ["zoë@example.com", "sam@exämple.com", "björk.ö@bücher.de"])
@pytest.mark.parametrize("name", ["Zoë", 'O\'Neil "the coach"', "=?utf-8?q?=0A?="])
def test_an_international_address_goes_out_as_smtputf8_does(render_app, email, name):
    rendered, old, msg = sample(render_app, "guide", Purpose.DRIP, name, email)
    new = msg.as_bytes()
    same_message(old, new, rendered, name)
    well_formed(new)
    utf8 = not smtp_address(email).isascii()
    assert (smtp_address(email).encode() in new) and (utf8 == (not new.isascii()))


HOSTILE_SUBJECTS = [
    "Hi\u2028Bcc: victim@example.org",
    "=?utf-8?q?=0D=0ABcc:_victim@example.org?=",
    "Hi =?utf-8?b?DQpDb250ZW50LVR5cGU6IHRleHQvaHRtbA==?= there",
    "  leading and trailing  ",
    "x" * 500,
    "Zoë, " * 60,
    "",
]


@pytest.mark.parametrize("name", [*HOSTILE_NAMES[1:], "Zoë, your guide"])
@pytest.mark.parametrize("subject", HOSTILE_SUBJECTS)
def test_hostile_input_never_makes_a_header_or_a_part(name, subject):
    data = message_bytes(
        RenderedEmail(subject, f"Hi {name}\n", f"<p>Hi {name}</p>\n"),
        mail_from="Inside Out Strength <coach@insideoutstrength.example>",
        to_address="sam@example.com",
        to_name=name,
        message_id="<1.2@insideoutstrength.example>",
        unsubscribe_url="https://news.example.org/unsubscribe/t",
        date=NOW,
    )
    well_formed(data)
    head = data.partition(b"\r\n\r\n")[0].decode("ascii")
    fields = [line.partition(":")[0] for line in head.split("\r\n") if line[:1] != " "]
    assert fields == HEADERS
    for line in head.split("\r\n"):
        if line.startswith(" "):  # a folded line: printable ASCII words (here, no address)
            assert re.fullmatch(r"( [!-~]+)+", line), line
    for parse in (PARSER.parsebytes, message_from_bytes):  # the new parser and compat32
        msg = parse(data)
        assert list(msg.keys()) == HEADERS
        assert len(msg.get_payload()) == 2
        assert [part.get_content_type() for part in msg.get_payload()] == [
            "text/plain",
            "text/html",
        ]
    msg = PARSER.parsebytes(data)
    # The input itself, nothing in it decoded; control characters and separators as spaces.
    assert display_name(data) == one_line(name).strip()
    assert msg["To"].addresses[0].addr_spec == "sam@example.com"
    assert str(msg["Subject"]) == one_line(subject)
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.replace("\r\n", "\n") == as_lines(f"Hi {name}\n")


@pytest.mark.parametrize("bad", ["Sam\r\nBcc: victim@example.org", "Sam\nX", "Sam\rX\u2028"])
def test_a_line_break_in_a_name_or_subject_is_written_as_a_space(bad):
    """As message.py writes it: the signup form refuses such names, older rows may hold one."""
    data = message_bytes(RenderedEmail(bad, "t", "h"), **writer_args() | {"to_name": bad})
    well_formed(data)
    msg = PARSER.parsebytes(data)
    assert msg.keys() == HEADERS
    spaced = re.sub(r"[\r\n\u2028]", " ", bad)
    assert str(msg["Subject"]) == spaced
    assert display_name(data) == spaced.strip()


def writer_args() -> dict:
    return {
        "mail_from": "Inside Out Strength <coach@insideoutstrength.example>",
        "to_address": "sam@example.com",
        "to_name": "Sam",
        "message_id": "<1.2@insideoutstrength.example>",
        "unsubscribe_url": "https://news.example.org/unsubscribe/t",
        "date": NOW,
    }


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("to_address", "sam@example.com\r\nBcc: victim@example.org", "To: not an address"),
        ("to_address", "sam @example.com", "To: not an address"),
        ("to_address", "<sam@example.com>", "To: not an address"),
        ("to_address", "sam@example.com, victim@example.org", "To: not an address"),
        ("to_address", "zoë@example.com", "To: not an address"),  # non-ASCII without SMTPUTF8
        ("to_address", "sam\u2028@example.com", "To: not an address"),
        ("message_id", "<1@x>\r\nBcc: victim@example.org", "not a Message-ID"),
        ("message_id", "1@x", "not a Message-ID"),
        ("message_id", "<1 2@x>", "not a Message-ID"),
        ("unsubscribe_url", "https://x.example/u>\r\nBcc: v@example.org", "not an unsubscribe URL"),
        (
            "unsubscribe_url",
            "https://x.example/u>, <mailto:v@example.org",
            "not an unsubscribe URL",
        ),
        ("unsubscribe_url", "javascript:alert(1)", "not an unsubscribe URL"),
        ("unsubscribe_url", "https://x.example/" + "u" * 1000, "not an unsubscribe URL"),
        ("mail_from", "Coach <coach@x.example>, victim@example.org", "MAIL_FROM"),
        ("mail_from", "not an address", "MAIL_FROM"),
    ],
)
def test_a_value_that_cannot_be_written_safely_is_refused(field, value, error):
    with pytest.raises(ValueError, match=error):
        message_bytes(RenderedEmail("s", "t", "h"), **writer_args() | {field: value})


def test_the_date_is_written_as_email_utils_writes_it():
    for date in (NOW, NOW.astimezone(timezone(timedelta(hours=-5, minutes=-30)))):
        msg = PARSER.parsebytes(
            message_bytes(RenderedEmail("s", "t", "h"), **writer_args() | {"date": date})
        )
        assert msg["Date"].datetime == date


@pytest.fixture(scope="module")
def dkim_key() -> tuple[DkimKey, bytes]:
    private = openssl("genrsa", "2048")
    public = openssl("rsa", "-pubout", data=private).decode()
    base64_key = "".join(line for line in public.splitlines() if "-----" not in line)
    return DkimKey(DOMAIN, SELECTOR, private), f"v=DKIM1; k=rsa; p={base64_key}".encode()


@pytest.mark.parametrize(
    ("name", "email"),
    [("Sam", "sam@example.com"), ("Zoë " * 30, "sam@example.com"), ("Zoë", "zoë@example.com")],
)
def test_dkim_verifies_over_the_written_bytes(render_app, dkim_key, name, email):
    key, record = dkim_key
    msg = sample(render_app, "guide", Purpose.DRIP, name, email)[2]
    data = msg.as_bytes(key)
    assert data.startswith(b"DKIM-Signature: ")
    assert dkim.verify(data, dnsfunc=dns_for(record))
    tampered = re.sub(rb"(?m)^Subject: [^\r\n]*", b"Subject: You won a prize", data, count=1)
    assert tampered != data and not dkim.verify(tampered, dnsfunc=dns_for(record))


def test_an_smtp_server_takes_the_bytes_as_they_are(render_app, smtpd):
    """aiosmtpd refuses bare line feeds and over-long lines: it takes these whole."""
    rendered, old, msg = sample(render_app, "guide", Purpose.DRIP, "Zoë " * 30, "zoë@example.com")
    data = msg.as_bytes()
    with smtplib.SMTP("127.0.0.1", smtpd.port) as conn:
        conn.sendmail(msg.sender, [msg.recipient], data, mail_options=["SMTPUTF8"])
    [received] = smtpd.received
    same_message(old, received.data, rendered, msg.to_name)


def test_each_message_has_a_boundary_of_its_own():
    args = writer_args()
    boundaries = {
        PARSER.parsebytes(message_bytes(RenderedEmail("s", "t", "h"), **args)).get_boundary()
        for _ in range(3)
    }
    assert len(boundaries) == 3

"""The MIME layer alone: whatever name or subject reaches it, visitor text never becomes a
header line or MIME structure. These bypass validation on purpose, and run on this
interpreter, whose email package (before 3.11.10) decodes encoded words while writing."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.content.rendering import RenderedEmail
from service.sending.message import one_line
from service.sending.mime import Outgoing
from tests.helpers import assert_our_headers_only, display_name

SENDER = "Inside Out Strength <coach@insideoutstrength.example>"


def b_word(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


def q_word(text: str) -> str:
    return "=?utf-8?q?" + "".join(f"={byte:02X}" for byte in text.encode()) + "?="


HOSTILE = {
    "q-crlf-bcc": "=?utf-8?q?Eve=0D=0ABcc:_attacker@evil.example?=",
    "b-crlf-content-type-and-body": b_word(
        "Eve\r\nContent-Type: text/html\r\n\r\n<h1>Attacker</h1>"
    ),
    "mixed-case-cte-and-charset": "=?UTF-8?Q?Eve=0d=0aX-Evil:_1?=",
    "split-by-folding-whitespace": "=?utf-8?q?Eve=0D?= =?utf-8?q?=0ABcc:_x@evil.example?=",
    "no-charset": "=??q?Eve=0D=0AX-Evil:_1?=",
    "unknown-charset-with-language": "=?x-evil*en?q?Eve=0D=0AX-Evil:_1?=",
    "spaces-inside-the-word": "=?utf-8?q?Eve=0D=0AX-Evil: 1?=",
    "inside-quotes": '"=?utf-8?q?Eve=0D=0AX-Evil:_1?="',
    "glued-to-a-word": "Ann=?utf-8?q?=0D=0AX-Evil:_1?=",
    "raw-crlf": "Eve\r\nBcc: x@evil.example",
    "raw-lf-blank-line": "Eve\n\n<h1>Attacker</h1>",
    "line-separator": "Eve\u2028Bcc: x@evil.example",
    "paragraph-separator": "Eve\u2029X-Evil: 1",
    "next-line": "Eve\x85X-Evil: 1",
    "vertical-tab-form-feed": "Eve\x0bX-A: 1\x0cX-B: 2",
    "specials": 'Ann "A,B" <ann@evil.example>; \\ Smith',
    "long-non-ascii": "Zoë Ångström-Łukasiewicz Ίριδα 陳美玲 Ольга " * 8,
}


def send_bytes(name: str | None, subject: str, to_address: str = "ann@example.com") -> bytes:
    msg = Outgoing(
        RenderedEmail(subject=subject, text=f"Hi {name},\n", html=f"<p>Hi {name},</p>"),
        mail_from=SENDER,
        to_address=to_address,
        to_name=name,
        message_id="<1@insideoutstrength.example>",
        unsubscribe_url="https://news.example.org/unsubscribe/t",
        date=datetime(2026, 3, 2, tzinfo=UTC),
        sender="coach@insideoutstrength.example",
        recipient=to_address,
    )
    return msg.as_bytes()


def parsed(raw: bytes) -> EmailMessage:
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert not msg.defects
    return msg  # type: ignore[return-value]


@pytest.mark.parametrize("to_address", ["ann@example.com", "änn@example.com"], ids=["7bit", "utf8"])
@pytest.mark.parametrize("name", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_name_stays_literal_text_in_to_and_subject(name: str, to_address: str):
    subject = f"{name}, your free guide is here"  # as the guide's subject.txt renders it
    raw = send_bytes(name, subject, to_address)
    assert_our_headers_only(raw)
    msg = parsed(raw)
    [to] = msg["To"].addresses
    assert display_name(raw) == one_line(name).strip()
    assert to.addr_spec.encode("utf-8", "surrogateescape").decode() == to_address
    assert msg["Subject"] == one_line(subject)


def test_one_line_turns_every_line_break_python_knows_into_a_space():
    breaks = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
    assert len(f"a{breaks}b".splitlines()) > 1
    assert one_line(f"a{breaks}b") == "a" + " " * len(breaks) + "b"
    assert one_line("a\x00\x1b\x7f\ud800b") == "a   \ufffdb"


def test_an_address_shaped_like_an_encoded_word_is_written_as_typed():
    """email-validator accepts `=?utf-8?b?...?=@example.com` (all atext): the contract's
    rule, so the MIME layer alone must keep its decoded form out of the header block."""
    local = b_word("a\r\nX-Evil: 1")
    raw = send_bytes("Ann", "Ann, your free guide is here", f"{local}@example.com")
    assert_our_headers_only(raw)
    assert f"To: Ann <{local}@example.com>\r\n".encode() in raw
    parsed(raw)


def test_without_a_name_the_to_header_is_the_bare_address():
    raw = send_bytes(None, "Hi there, your free guide is here")
    assert b"\r\nTo: ann@example.com\r\n" in raw
    assert parsed(raw)["To"].addresses[0].display_name == ""


def test_plain_and_quoted_names_are_written_readably():
    assert b"\r\nTo: Ann Lee <ann@example.com>\r\n" in send_bytes("Ann Lee", "Hi")
    raw = send_bytes('J. "Coach" O\'Neil', "Hi")
    assert b'\r\nTo: "J. \\"Coach\\" O\'Neil" <ann@example.com>\r\n' in raw
    assert b"\r\nSubject: Hi\r\n" in raw


# Fragments a decoder might assemble into something: encoded words of hostile payloads,
# separators, quotes and plain text, in any order.
PAYLOADS = st.sampled_from(
    ["\r\nBcc: x@evil.example", "\r\n\r\n<h1>Attacker</h1>", "\nX-Evil: 1", '"', "\\", ""]
)
FRAGMENTS = st.one_of(
    PAYLOADS.map(b_word),
    PAYLOADS.map(q_word),
    st.sampled_from(["=?", "?=", "=?utf-8?q?", "=?UTF-8?B?", " ", "\r\n ", "\u2028", '"', ","]),
    st.text(max_size=8),
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(parts=st.lists(FRAGMENTS, max_size=8), utf8=st.booleans())
def test_no_name_assembled_from_encoded_word_fragments_adds_a_header(parts, utf8):
    name = "".join(parts)
    raw = send_bytes(name, f"{name}, your free guide is here", "änn@x.org" if utf8 else "a@x.org")
    assert_our_headers_only(raw)
    parsed(raw)
    assert display_name(raw) == one_line(name).strip()

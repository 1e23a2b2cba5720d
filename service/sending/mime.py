"""MIME bytes written directly (what EmailMessage.as_bytes() gives, in a tenth of the time),
with every header value that comes from a visitor encoded here.

A display name or subject that is not plain printable ASCII goes out as RFC 2047 encoded
words built here, never as text the input chose: a `=?...?=` in the input is encoded like
any other text, so no decoder can turn it into a line break, a header or a MIME part.
"""

from __future__ import annotations

import binascii
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.utils import format_datetime
from functools import lru_cache

from ..content.rendering import RenderedEmail
from ..core.dkim_key import DkimKey
from . import dkim
from .message import one_line

LINE = 78  # RFC 5322 §2.1.1: header lines SHOULD stay within 78 characters
MAX_LINE = 998  # and MUST within 998
WORD = 75  # RFC 2047 §2: an encoded word is at most 75 characters
WORD_END = "?="
# RFC 2047 §5(3): in a phrase an encoded word may hold only these (and =XX, and _ for space).
Q_LITERAL = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?: [A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*")
PRINTABLE = re.compile(r"[ -~]*")
ADDRESS_PART = r"[^\s\x00-\x1f\x7f-\x9f\"(),:;<>@\[\\\]]+"
ADDRESS = re.compile(f"{ADDRESS_PART}@{ADDRESS_PART}")
MESSAGE_ID = re.compile(r"<[!-;=?A-~]+@[!-;=?A-~]+>")
URL = re.compile(r"https?://[!-;=?-~]+")
PART_HEADERS = (
    b'Content-Type: text/%s; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
)


def message_bytes(
    rendered: RenderedEmail,
    *,
    mail_from: str,
    to_address: str,
    to_name: str | None,
    message_id: str,
    unsubscribe_url: str,
    date: datetime,
    utf8: bool = False,
) -> bytes:
    """The whole message, CRLF line ends: multipart/alternative with the text and the HTML
    as quoted-printable parts. `utf8` (SMTPUTF8) allows a non-ASCII address in To or From.
    A control character or line separator in the name or subject is written as a space, as
    message.py writes it; ValueError for a malformed address, Message-ID or URL."""
    boundary = f"=_{secrets.token_hex(12)}"  # "=_" never occurs in quoted-printable text
    head = _head(rendered.subject, mail_from, to_address, to_name, utf8)
    tail = _tail(message_id, unsubscribe_url, date, boundary)
    # RFC 2046 §5.1.1: the CRLF before a delimiter belongs to it, so each part keeps its own.
    delimiter = f"--{boundary}".encode("ascii")
    return b"".join(
        (
            head.encode("utf-8" if utf8 else "ascii"),
            tail.encode("ascii"),
            delimiter,
            b"\r\n",
            PART_HEADERS % b"plain",
            quoted_printable(rendered.text),
            b"\r\n",
            delimiter,
            b"\r\n",
            PART_HEADERS % b"html",
            quoted_printable(rendered.html),
            b"\r\n",
            delimiter,
            b"--\r\n",
        )
    )


def _head(subject: str, mail_from: str, to_address: str, to_name: str | None, utf8: bool) -> str:
    """From, To and Subject: what may hold a visitor's words."""
    return (
        f"{_sender_header(mail_from, utf8)}\r\n"
        f"{_address_header('To', to_name or '', to_address, utf8)}\r\n"
        f"{_unstructured_header('Subject', subject)}\r\n"
    )


def _tail(message_id: str, unsubscribe_url: str, date: datetime, boundary: str) -> str:
    """The rest of the headers, and the blank line after them."""
    if not MESSAGE_ID.fullmatch(message_id):
        raise ValueError(f"not a Message-ID: {message_id!r}")
    unsubscribe = f"List-Unsubscribe: <{unsubscribe_url}>"
    if not URL.fullmatch(unsubscribe_url) or len(unsubscribe) > MAX_LINE:
        raise ValueError(f"not an unsubscribe URL for a header: {unsubscribe_url!r}")
    return (
        f"Date: {format_datetime(date)}\r\n"
        f"Message-ID: {message_id}\r\n"
        f"{unsubscribe}\r\n"
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'
    )


@dataclass(frozen=True)
class Outgoing:
    """One email ready to go: what its bytes are written from, and its envelope. A transport
    writes the bytes (as_bytes) with its own DKIM key, so the signature covers them exactly."""

    rendered: RenderedEmail
    mail_from: str
    to_address: str
    to_name: str | None
    message_id: str
    unsubscribe_url: str
    date: datetime
    sender: str  # the envelope's MAIL FROM
    recipient: str  # and RCPT TO
    # The bytes as written for each DKIM key, kept: the boundary is random, and a worker
    # writes them before it reads the last record's answer, the transport after.
    written: dict[DkimKey | None, bytes] = field(default_factory=dict, compare=False, repr=False)

    @property
    def utf8(self) -> bool:
        """Whether the envelope needs SMTPUTF8 (and the headers may then carry UTF-8)."""
        return not (self.sender.isascii() and self.recipient.isascii())

    def as_bytes(self, dkim_key: DkimKey | None = None) -> bytes:
        """The bytes that go on the wire (or into the outbox), DKIM-signed when a key is set;
        written once for each key."""
        done = self.written.get(dkim_key)
        if done is not None:
            return done
        data = message_bytes(
            self.rendered,
            mail_from=self.mail_from,
            to_address=self.to_address,
            to_name=self.to_name,
            message_id=self.message_id,
            unsubscribe_url=self.unsubscribe_url,
            date=self.date,
            utf8=self.utf8,
        )
        self.written[dkim_key] = data = dkim.sign(data, dkim_key) if dkim_key else data
        return data


def quoted_printable(text: str) -> bytes:
    """UTF-8, quoted-printable, CRLF line ends and a final one (as EmailMessage.set_content
    writes a text part): lines of at most 76 characters, so no line is ever too long."""
    lines = text.encode("utf-8").splitlines()
    return binascii.b2a_qp(b"\r\n".join(lines) + b"\r\n", istext=True)


@lru_cache(maxsize=8)
def _sender_header(mail_from: str, utf8: bool) -> str:
    """From, once per setting: MAIL_FROM read as EmailMessage reads it."""
    header = policy.default.header_factory("From", mail_from)
    addresses: tuple[Address, ...] = getattr(header, "addresses", ())
    if len(addresses) != 1 or header.defects:
        raise ValueError(f"MAIL_FROM is not one address: {mail_from!r}")
    return _address_header("From", addresses[0].display_name, addresses[0].addr_spec, utf8)


def _address_header(field: str, name: str, address: str, utf8: bool) -> str:
    if not ADDRESS.fullmatch(address) or not (utf8 or address.isascii()):
        raise ValueError(f"{field}: not an address this message can carry: {address!r}")
    name = _one_line(name).strip()
    if not name:
        return f"{field}: {address}"
    return _fold(f"{field}:", [*_phrase(field, name), f"<{address}>"])


def _phrase(field: str, name: str) -> list[str]:
    """A display name as tokens a header may fold between: atoms, one quoted string, or
    encoded words. Anything holding "=?" is encoded, so it can never be decoded as a word."""
    if "=?" not in name and PRINTABLE.fullmatch(name):
        if ATOMS.fullmatch(name) and max(map(len, name.split(" "))) < LINE - 10:
            return name.split(" ")
        quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if len(quoted) < LINE - 10:
            return [quoted]
    return _encoded_words(field, name)


def _unstructured_header(field: str, value: str) -> str:
    value = _one_line(value)
    words = value.split(" ")
    plain = "=?" not in value and PRINTABLE.fullmatch(value) and "" not in words
    if plain and max(map(len, words)) < LINE - 10:
        return _fold(f"{field}:", words)
    return _fold(f"{field}:", _encoded_words(field, value) if value else [])


def _one_line(text: str) -> str:
    return text if PRINTABLE.fullmatch(text) else one_line(text)  # printable ASCII: as is


def _encoded_words(field: str, text: str) -> list[str]:
    """RFC 2047 words of UTF-8, Q or B encoded as is shorter (fewer words: some decoders,
    Python's among them, keep the space between two), split between characters into words
    of at most 75, the first short enough to share its line with the field name."""
    chars = [char.encode("utf-8") for char in text]
    quoted = ["".join(map(_q, char)) for char in chars]
    size = sum(map(len, chars))
    base64 = (size + 2) // 3 * 4 < sum(map(len, quoted))
    start = "=?utf-8?b?" if base64 else "=?utf-8?q?"
    first, room = (
        min(WORD, LINE - len(field) - 2) - len(start) - len(WORD_END),
        WORD - len(start) - len(WORD_END),
    )
    if base64:  # every 3 bytes take 4 characters, so count bytes against 3/4 of the room
        first, room = first // 4 * 3, room // 4 * 3
    costs = [len(char) for char in chars] if base64 else [len(piece) for piece in quoted]
    spans, begin, used, limit = [], 0, 0, first
    for end, cost in enumerate(costs):
        if used + cost > limit and end > begin:
            spans.append((begin, end))
            begin, used, limit = end, 0, room
        used += cost
    spans.append((begin, len(costs)))
    if base64:
        texts = [
            binascii.b2a_base64(b"".join(chars[a:b]), newline=False).decode() for a, b in spans
        ]
    else:
        texts = ["".join(quoted[a:b]) for a, b in spans]
    return [f"{start}{text}{WORD_END}" for text in texts]


def _q(byte: int) -> str:
    if byte in Q_LITERAL:
        return chr(byte)
    return "_" if byte == 0x20 else f"={byte:02X}"


def _fold(prefix: str, tokens: list[str]) -> str:
    """Tokens joined by spaces, a line break put before a token where the line would pass 78
    characters: unfolding (removing each CRLF) gives back the value."""
    lines, line, empty = [], prefix, True
    for token in tokens:
        if len(line) + 1 + len(token) > LINE and not empty:
            lines.append(line)
            line = ""
        line += " " + token
        empty = False
    lines.append(line)
    return "\r\n".join(lines)

"""The reference the MIME writer (service/sending/mime.py) is checked against: the
EmailMessage builder the service used before, with its own To and Subject headers (an
EmailMessage parse of those would decode a visitor's encoded words, CVE-2024-6923)."""

from __future__ import annotations

import itertools
import re
from datetime import datetime
from email import policy
from email.charset import Charset
from email.message import EmailMessage
from email.policy import Policy
from email.utils import format_datetime, quote

from service.content.rendering import RenderedEmail
from service.sending.message import one_line

MAX_HEADER_LINE = 998  # RFC 5322 §2.1.1, as the transports' policies fold
UTF8 = Charset("utf-8")
ROOM = MAX_HEADER_LINE - len("Subject: ")  # what a value may take on the header's first line
ENCODED_WORD_START = "=?"
SPECIALS = re.compile(r'[][\\()<>@,:;".]')  # RFC 5322: outside atext, a phrase must quote them


def build_message(
    rendered: RenderedEmail,
    *,
    mail_from: str,
    to_address: str,
    to_name: str | None,
    message_id: str,
    unsubscribe_url: str,
    date: datetime,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = mail_from
    msg["To"] = recipient_header(to_address, to_name)
    msg["Subject"] = subject_header(rendered.subject)
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(rendered.text, cte="quoted-printable")
    msg.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    return msg


class OwnHeader(str):
    """A header we write ourselves. The stdlib would parse a To or Subject string into
    tokens first, and before Python 3.11.10 that parse decodes encoded words a visitor
    typed ("=?utf-8?q?=0D=0ABcc:...?=") into raw header lines when writing (CVE-2024-6923).
    EmailPolicy stores a value that has a `name` as it is and serializes it by calling its
    fold(), so what we build here reaches the wire unparsed, on every Python."""

    name: str
    folded: str  # the value, folded with "\n" + space where it is too long for one line

    def __new__(cls, name: str, text: str, folded: str) -> OwnHeader:
        header = super().__new__(cls, text)
        header.name, header.folded = name, folded
        return header

    def fold(self, *, policy: Policy) -> str:
        return f"{self.name}: {self.folded}".replace("\n", policy.linesep) + policy.linesep


def _needs_encoding(text: str) -> bool:
    # Literal "=?" is encoded too, so a reader's decoder shows it as typed, never decodes it.
    return not text.isascii() or ENCODED_WORD_START in text


def _encoded_words(text: str, room: int) -> str:
    """RFC 2047 encoded words of the whole text: one while it fits in `room`, as the stdlib
    writes them at max_line_length=998 (split at 75 characters, Python's own parser keeps
    the space between two words of a display name), folded beyond that."""
    return "\n ".join(line or "" for line in UTF8.header_encode_lines(text, itertools.repeat(room)))


def subject_header(subject: str) -> OwnHeader:
    text = one_line(subject)
    return OwnHeader("Subject", text, _encoded_words(text, ROOM) if _needs_encoding(text) else text)


def recipient_header(address: str, name: str | None) -> OwnHeader:
    """`Name <address>`, the name quoted or encoded as it needs; the address as typed
    (email-validator's form, never quoted: it is a dot-atom)."""
    address, display = one_line(address).strip(), one_line(name or "").strip()
    if not display:
        return OwnHeader("To", address, address)
    if _needs_encoding(display):
        phrase = _encoded_words(display, ROOM - len(address) - 3)
    elif SPECIALS.search(display):
        phrase = f'"{quote(display)}"'
    else:
        phrase = display
    return OwnHeader("To", f"{display} <{address}>", f"{phrase} <{address}>")


# As the transports wrote it: CRLF, headers unfolded up to 998 characters.
SMTP_POLICY = policy.SMTP.clone(max_line_length=998)
SMTPUTF8_POLICY = policy.SMTPUTF8.clone(max_line_length=998)


def serialize(msg: EmailMessage, sender: str, recipient: str) -> bytes:
    ascii_only = sender.isascii() and recipient.isascii()
    return msg.as_bytes(policy=SMTP_POLICY if ascii_only else SMTPUTF8_POLICY)

"""MIME building: a multipart/alternative message with RFC 8058 unsubscribe headers."""

from __future__ import annotations

import itertools
import re
import unicodedata
from datetime import datetime
from email.charset import Charset
from email.message import EmailMessage
from email.policy import Policy
from email.utils import format_datetime, make_msgid, parseaddr, quote

from .rendering import RenderedEmail

MAX_HEADER_LINE = 998  # RFC 5322 §2.1.1, as the transports' policies fold
UTF8 = Charset("utf-8")
ROOM = MAX_HEADER_LINE - len("Subject: ")  # what a value may take on the header's first line
ENCODED_WORD_START = "=?"
SPECIALS = re.compile(r'[][\\()<>@,:;".]')  # RFC 5322: outside atext, a phrase must quote them


def new_message_id(mail_from: str) -> str:
    """A globally unique Message-ID in the sender's domain, fixed when the email is scheduled."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"
    return make_msgid(domain=domain.encode("idna").decode("ascii"))


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


def one_line(text: str) -> str:
    """Text a header can carry: every control character and line or paragraph separator
    (all that str.splitlines() breaks on, U+0085 and U+2028 included) becomes a space."""
    return "".join(_one_char(c) for c in text)


def _one_char(char: str) -> str:
    category = unicodedata.category(char)
    if category in ("Cc", "Zl", "Zp"):
        return " "
    return "\ufffd" if category == "Cs" else char  # a lone surrogate cannot be UTF-8


def _needs_encoding(text: str) -> bool:
    # Literal "=?" is encoded too, so a reader's decoder shows it as typed, never decodes it.
    return not text.isascii() or ENCODED_WORD_START in text


def _encoded_words(text: str, room: int) -> str:
    """RFC 2047 encoded words of the whole text: one while it fits in `room`, as the stdlib
    writes them at max_line_length=998 (split at 75 characters, Python's own parser keeps
    the space between two words of a display name), folded beyond that."""
    return "\n ".join(UTF8.header_encode_lines(text, itertools.repeat(room)))


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

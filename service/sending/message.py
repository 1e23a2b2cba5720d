"""Message-IDs, and header text on one line (the MIME bytes themselves: mime.py)."""

from __future__ import annotations

import unicodedata
from email.utils import make_msgid, parseaddr
from functools import lru_cache


def new_message_id(mail_from: str) -> str:
    """A globally unique Message-ID in the sender's domain, fixed when the email is scheduled."""
    return make_msgid(domain=_domain(mail_from))


@lru_cache(maxsize=64)
def _domain(mail_from: str) -> str:
    # Parsed once per sender: parseaddr took 23 of the 25 us a Message-ID cost, paid for
    # every email sent (its next step's) and every signup.
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"
    return domain.encode("idna").decode("ascii")


def one_line(text: str) -> str:
    """Text a header can carry: every control character and line or paragraph separator
    (all that str.splitlines() breaks on, U+0085 and U+2028 included) becomes a space."""
    return "".join(_one_char(c) for c in text)


def _one_char(char: str) -> str:
    category = unicodedata.category(char)
    if category in ("Cc", "Zl", "Zp"):
        return " "
    return "\ufffd" if category == "Cs" else char  # a lone surrogate cannot be UTF-8

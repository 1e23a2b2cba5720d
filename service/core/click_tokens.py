"""Click tokens: a link's target and the email row it went out in, signed with SECRET_KEY.

The token carries the target, so a click needs no re-render and survives content edits; the
signature covers it together with the email row's id and Message-ID, so nobody can change
where a token leads, and a token answers only for the row it was made for (an id SQLite
handed to a later row carries another Message-ID). Compact: base64 of the id as a varint
and the URL's bytes, a dot, HMAC-SHA1 (itsdangerous' Signer, which tries every key).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from itsdangerous import BadData, Signer
from itsdangerous.encoding import base64_decode, base64_encode

SALT = "leadmagnet.click"
MAX_URL = 2000  # what every browser and mail client carries; longer links stay as written
MAX_TOKEN = 4 * MAX_URL  # comfortably above the longest token we make
SCHEMES = ("http", "https")
MAX_ID = 2**31 - 1  # the id columns are 32-bit on PostgreSQL: a larger one is no row of ours


@dataclass(frozen=True)
class Unverified:
    """What a well-formed token says, before its signature is checked against the row."""

    email_id: int
    url: str
    payload: str
    signature: str


@lru_cache(maxsize=4096)  # the links of a content version, asked for in every message
def trackable(url: str) -> bool:
    """A link a click token may lead to: http(s), a host, plain printable ASCII (it goes
    into a Location header as it is), not too long. Anything else is left as written."""
    if not (0 < len(url) <= MAX_URL and url.isascii() and url.isprintable()):
        return False
    if any(c in url for c in ' \\"<>`'):
        return False
    try:
        parts = urlsplit(url)
        if parts.scheme.lower() not in SCHEMES or not parts.hostname or parts.port == 0:
            return False
        parts.hostname.encode("idna")  # how a Location header writes it (werkzeug)
    except ValueError:  # no IPv6 address in brackets, no number as port, an empty label...
        return False
    return True


@lru_cache(maxsize=8)
def _signer(secret_keys: tuple[str, ...]) -> Signer:
    # SECRET_KEY lists the newest first; itsdangerous signs with the last of its list.
    return Signer(list(reversed(secret_keys)), salt=SALT)


def _signed(payload: str, message_id: str) -> bytes:
    return f"{payload}.{message_id}".encode()


def make(secret_keys: tuple[str, ...], email_id: int, message_id: str, url: str) -> str:
    """The token of one link in one email row."""
    payload = base64_encode(_varint(email_id) + url.encode("ascii")).decode("ascii")
    signature = _signer(secret_keys).get_signature(_signed(payload, message_id))
    return f"{payload}.{signature.decode('ascii')}"


def parse(token: str) -> Unverified | None:
    """The email id and URL a token names; None when it is not a token's shape at all."""
    if len(token) > MAX_TOKEN or not token.isascii():
        return None
    payload, dot, signature = token.partition(".")
    if not dot or not signature:
        return None
    try:
        raw = base64_decode(payload)
    except BadData:
        return None
    read = _read_varint(raw)
    if read is None:
        return None
    email_id, rest = read
    url = rest.decode("ascii", errors="replace")
    if not trackable(url):
        return None
    return Unverified(email_id, url, payload, signature)


def genuine(secret_keys: tuple[str, ...], token: Unverified, message_id: str) -> bool:
    """Whether one of the keys signed this token for the row with this Message-ID."""
    return _signer(secret_keys).verify_signature(
        _signed(token.payload, message_id), token.signature.encode("ascii")
    )


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        out.append(low | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _read_varint(raw: bytes) -> tuple[int, bytes] | None:
    number = 0
    for position, byte in enumerate(raw[:5]):
        number |= (byte & 0x7F) << (7 * position)
        if not byte & 0x80:
            return (number, raw[position + 1 :]) if 0 < number <= MAX_ID else None
    return None

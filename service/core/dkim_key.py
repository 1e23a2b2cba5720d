"""The DKIM signing key: the three DKIM settings, read and checked when settings are."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from dkim.crypto import UnparsableKeyError, parse_pem_private_key

MIN_BITS = 1024
SELECTOR = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9_-]+)*$")
DOMAIN = re.compile(
    r"^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]{2,63}$"
)


@dataclass(frozen=True)
class DkimKey:
    """Who signs: d= and s= of the signature, and the RSA private key (PEM bytes)."""

    domain: str
    selector: str
    private_key: bytes = field(repr=False)


def load_key(domain: str, selector: str, key: str) -> DkimKey:
    """Build a DkimKey from a PEM string or the path of a PEM file; ValueError says why not."""
    if not DOMAIN.match(domain):
        raise ValueError(f"DKIM_DOMAIN {domain!r} is not a domain name")
    if not SELECTOR.match(selector):
        raise ValueError(f"DKIM_SELECTOR {selector!r} is not a DNS label")
    pem = _pem_bytes(key)
    try:
        parsed = parse_pem_private_key(pem)
    except (UnparsableKeyError, ValueError, IndexError, TypeError):
        raise ValueError(
            "DKIM_PRIVATE_KEY is not a readable RSA private key (PEM, PKCS#1 or PKCS#8)"
        ) from None
    if parsed["modulus"].bit_length() < MIN_BITS:
        # Receivers ignore shorter keys (RFC 8301 §3.2), so the mail would go out unsigned.
        raise ValueError(f"DKIM_PRIVATE_KEY must be an RSA key of {MIN_BITS} bits or more")
    return DkimKey(domain=domain.lower(), selector=selector, private_key=pem)


def _pem_bytes(key: str) -> bytes:
    if "-----BEGIN" in key:
        # .env files and container settings often carry the PEM on one line with literal \n.
        pem = key.replace("\\n", "\n").strip().encode("ascii", "replace") + b"\n"
        return pem.replace(b"\r\n", b"\n")
    path = Path(key).expanduser()
    try:
        return path.read_bytes().replace(b"\r\n", b"\n")
    except OSError as exc:
        # A long value is more likely a pasted key without its BEGIN line: never echo it.
        shown = key if len(key) <= 200 else "(a long value, not shown: a PEM without BEGIN?)"
        raise ValueError(
            f"DKIM_PRIVATE_KEY is neither a PEM key nor a readable file: {shown} "
            f"({exc.strerror or type(exc).__name__})"
        ) from None

"""DKIM: sign the exact bytes a transport sends (relaxed/relaxed, rsa-sha256)."""

from __future__ import annotations

import dkim

from ..core.dkim_key import DkimKey

# RFC 8058 §4: the one-click unsubscribe headers must be covered by the signature.
SIGNED_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"mime-version",
    b"content-type",
)


def sign(data: bytes, key: DkimKey) -> bytes:
    """The message with a DKIM-Signature header in front, ready to send as it is."""
    signature = dkim.sign(
        data,
        key.selector.encode("ascii"),
        key.domain.encode("ascii"),
        key.private_key,
        canonicalize=(b"relaxed", b"relaxed"),
        signature_algorithm=b"rsa-sha256",
        include_headers=list(SIGNED_HEADERS),
        linesep=b"\r\n",
    )
    return signature + data

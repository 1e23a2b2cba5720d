"""MIME building: a multipart/alternative message with RFC 8058 unsubscribe headers."""

from __future__ import annotations

from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

from .rendering import RenderedEmail


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
    msg["To"] = _recipient(to_address, to_name)
    msg["Subject"] = rendered.subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(rendered.text, cte="quoted-printable")
    msg.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    return msg


def _recipient(address: str, name: str | None) -> Address:
    local, _, domain = address.rpartition("@")
    # Address() refuses CR/LF in any part, so a name can never inject a header. But the
    # email package decodes an RFC 2047 word in a display name when it writes the header,
    # unquoted: a name "=?utf-8?b?...?=" became "To: Bcc: v@example.org <...>", a To that
    # names another address. Such a name is left out of the header (the greeting keeps it).
    if name and "=?" in name:
        name = None
    return Address(display_name=name or "", username=local, domain=domain)

"""Addresses, normalised in one place: the form we store, the key of one subscriber or
owner, and the mailbox that every spelling of one inbox shares."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

# Providers known to ignore dots in the local part; googlemail.com is gmail.com's other name.
DOTLESS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}
MAX_LENGTH = 320  # RFC 3696's longest address, and the columns' width


def normalized(raw: str) -> str | None:
    """email-validator's normal form (the domain lower-cased and IDNA-checked, Unicode
    folded), without a DNS lookup; None for what is no address at all. Signup stores this
    form, so anything that looks a subscriber up by an address it was given uses it too."""
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def email_key(address: str) -> str:
    """One subscriber (or owner) per key: `Ann@X.org` and `ann@x.org` are the same person."""
    return address.strip().casefold()


def mailbox_key(address: str) -> str:
    """Lower-cased, without a `+tag`, and for Gmail without dots: `V.i.c.t.i.m+6@gmail.com`
    and `victim@googlemail.com` are one mailbox. For limits only; mail goes as typed."""
    local, at, domain = email_key(address).rpartition("@")
    if not at:
        return domain  # not an address at all (the rate limit reads unvalidated input)
    local = local.split("+", 1)[0] or local  # "+tag@" alone is a name, not a tag
    if domain in DOTLESS:
        local, domain = local.replace(".", "") or local, DOTLESS[domain]
    return f"{local}@{domain}"

"""The mailbox an address reaches: one key for every spelling that lands in one inbox."""

from __future__ import annotations

# Providers known to ignore dots in the local part; googlemail.com is gmail.com's other name.
DOTLESS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def mailbox_key(address: str) -> str:
    """Lower-cased, without a `+tag`, and for Gmail without dots: `V.i.c.t.i.m+6@gmail.com`
    and `victim@googlemail.com` are one mailbox. For limits only; mail goes as typed."""
    local, at, domain = address.strip().casefold().rpartition("@")
    if not at:
        return domain  # not an address at all (the rate limit reads unvalidated input)
    local = local.split("+", 1)[0] or local  # "+tag@" alone is a name, not a tag
    if domain in DOTLESS:
        local, domain = local.replace(".", "") or local, DOTLESS[domain]
    return f"{local}@{domain}"

"""The mailbox an address reaches: every spelling of one inbox gets one key."""

from __future__ import annotations

import pytest

from service.addresses import mailbox_key

SAME_MAILBOX = {
    "victim@example.com": [
        "victim@example.com",
        "Victim@Example.COM",
        "victim+1@example.com",
        "VICTIM+news+more@example.com",
        "  victim+x@example.com ",
    ],
    "victim@gmail.com": [
        "v.i.c.t.i.m@gmail.com",
        "Vic.Tim+6@gmail.com",
        "victim@googlemail.com",
        "v.ictim+x@GoogleMail.com",
    ],
    "v.ictim@example.com": ["v.ictim@example.com", "V.ICTIM+1@example.com"],  # dots matter here
    "+tag@example.com": ["+tag@example.com"],  # nothing before the + : that is the name
    "josé@bücher.de": ["José+1@bücher.de"],
}


@pytest.mark.parametrize("key", SAME_MAILBOX)
def test_every_spelling_of_one_mailbox_has_its_key(key: str):
    assert {mailbox_key(address) for address in SAME_MAILBOX[key]} == {key}


def test_different_mailboxes_keep_different_keys():
    keys = [mailbox_key(address) for spellings in SAME_MAILBOX.values() for address in spellings]
    assert len(set(keys)) == len(SAME_MAILBOX)
    assert mailbox_key("victim@example.com") != mailbox_key("victim@example.org")


def test_text_that_is_no_address_still_gets_a_key():
    """The rate limit reads the body before validation: anything must do, without an error."""
    assert mailbox_key("") == ""
    assert mailbox_key("no at sign") == "no at sign"

"""What an SMTP answer means for the email: try again, the recipient is gone, or our fault."""

from __future__ import annotations

import pytest

from service.sending.transport import DeliveryError, _classify

TRANSIENT, BOUNCE, REJECTED = DeliveryError.TRANSIENT, DeliveryError.BOUNCE, DeliveryError.REJECTED


@pytest.mark.parametrize("stage", ["connect", "mail", "rcpt", "data"])
@pytest.mark.parametrize("code", [421, 450, 451, 452, -1])
def test_a_4xx_or_a_dropped_connection_is_tried_again_whatever_the_stage(stage: str, code: int):
    assert _classify(code, b"4.3.0 try later", stage).kind == TRANSIENT


@pytest.mark.parametrize(
    ("stage", "reply", "kind"),
    [
        ("rcpt", b"5.1.1 no such user", BOUNCE),  # the recipient, named at RCPT
        ("rcpt", b"relay access denied", BOUNCE),  # whatever it says: RCPT is about them
        ("mail", b"5.7.1 sender rejected", REJECTED),  # our sender
        ("connect", b"5.7.0 authentication required", REJECTED),  # our credentials
        ("data", b"5.7.1 message content rejected", REJECTED),  # our message
        ("data", b"5.1.1 <ann@example.com>: user unknown", BOUNCE),  # a mailbox, after DATA
        ("data", b" 5.2.2 mailbox full", BOUNCE),  # mailbox status (RFC 3463)
        ("data", b"5.3.4 message too big", REJECTED),  # the system, not the mailbox
        ("data", b"user unknown", REJECTED),  # no enhanced code: not provably the mailbox
    ],
)
def test_a_5xx_blames_the_recipient_only_where_it_is_about_them(stage, reply, kind):
    assert _classify(550, reply, stage).kind == kind


def test_the_reply_is_kept_with_its_stage_and_code():
    error = _classify(550, "5.1.1 no such user", "rcpt")  # a str reply reads the same
    assert (error.code, error.reply) == (550, "rcpt: 5.1.1 no such user")
    assert str(error) == "550 rcpt: 5.1.1 no such user"


def test_an_undecodable_reply_is_still_a_reply():
    error = _classify(554, b"5.7.1 \xff\xfe blocked", "data")
    assert error.kind == REJECTED and "\ufffd" in error.reply

"""Outbox files are named `<UTC time>-<step>-<Message-ID>.eml`: a listing sorts them by
time and says which email each is; the name holds nothing a path could trip on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine

from service.sending.transport import outbox_name
from tests.helpers import api_signup, dispatch_inline, outbox_messages

START = datetime(2026, 3, 2, 15, 0, 0, 250_000, tzinfo=UTC)


def test_each_file_names_its_time_step_and_message(app, client, outbox):
    with time_machine.travel(START, tick=False) as traveller:
        assert api_signup(client, "ann@example.com").status_code == 202
        assert dispatch_inline(app) == ["sent"]
        traveller.shift(timedelta(days=2, seconds=1))
        assert dispatch_inline(app) == ["sent"]
    names = sorted(path.name for path in outbox.glob("*.eml"))
    ids = [msg["Message-ID"].strip("<>").replace("@", "_") for msg in outbox_messages(outbox)]
    assert names == [
        f"20260302T150000.250Z-guide-{ids[0]}.eml",
        f"20260304T150001.250Z-knees-over-toes-{ids[1]}.eml",
    ]


def test_a_name_keeps_slashes_and_at_signs_out():
    name = outbox_name("<a/b@c..d>", "../x", START)
    assert "/" not in name and "@" not in name
    assert name == "20260302T150000.250Z-.._x-a_b_c..d"

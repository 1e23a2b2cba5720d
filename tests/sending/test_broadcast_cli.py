"""`leadmagnet broadcast ...`: create from a folder, send with and without --yes, status,
pause, resume, retry-failed and list, each failing with one clear line."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import time_machine
from sqlalchemy import select

from service.core.extensions import db
from service.core.models import Broadcast, ScheduledEmail
from service.sending.context import for_app
from tests.broadcast_helpers import add_subscribers, deliver_ids, hand_out


def folder(tmp_path: Path, **files: str) -> Path:
    target = tmp_path / "news"
    target.mkdir(exist_ok=True)
    for name, text in files.items():
        (target / name.replace("_", ".")).write_text(text)
    return target


def run(app, *args: str, input: str | None = None):
    return app.test_cli_runner().invoke(args=["broadcast", *args], input=input)


def test_create_prints_the_id_and_audience_and_send_asks_first(app, tmp_path):
    add_subscribers(app, 4)
    news = folder(tmp_path, subject_txt="Hello {{ first_name }}", body_md="# New post\n")
    created = run(app, "create", str(news))
    assert created.exit_code == 0, created.output
    broadcast_id = int(re.search(r"broadcast (\d+) created: audience 4", created.output)[1])
    asked = run(app, "send", str(broadcast_id), input="n\n")
    assert "4 recipients" in asked.output and "nothing sent" in asked.output
    with app.app_context():
        assert db.session.get_one(Broadcast, broadcast_id).status == "draft"
        assert (
            db.session.scalar(
                select(ScheduledEmail.id).where(ScheduledEmail.broadcast_id == broadcast_id)
            )
            is None
        )
    started = run(app, "send", str(broadcast_id), "--yes")
    assert "sending to 4 recipients" in started.output
    status = run(app, "status", str(broadcast_id))
    assert status.exit_code == 0
    for line in ("state: sending", "sent: 0", "failed: 0", "remaining: 4", "skipped: 0"):
        assert line in status.output
    assert run(app, "pause", str(broadcast_id)).exit_code == 0
    assert "state: paused" in run(app, "status", str(broadcast_id)).output
    assert run(app, "resume", str(broadcast_id)).exit_code == 0
    deliver_ids(app, hand_out(app))
    hand_out(app)
    status = run(app, "status", str(broadcast_id)).output
    assert "state: finished" in status and "sent: 4" in status and "delivered: 4" in status
    assert f"{broadcast_id}\tfinished\t4\tHello {{{{ first_name }}}}" in run(app, "list").output
    assert "0 failed emails queued again" in run(app, "retry-failed", str(broadcast_id)).output


def test_a_bad_folder_fails_with_one_line_and_makes_nothing(app, tmp_path):
    with app.app_context():
        for_app(app)  # the default magnet loaded, as `serve` does at start (and logs it)
    cases = [
        (tmp_path / "absent", "is not a folder"),
        (folder(tmp_path, body_md="x"), "subject.txt is missing"),
    ]
    for path, message in cases:
        result = run(app, "create", str(path))
        assert result.exit_code != 0 and message in result.output
        assert len(result.output.strip().splitlines()) == 1
    news = folder(tmp_path, subject_txt="Hi", body_md="{{ frist_name }}")
    result = run(app, "create", str(news))
    assert result.exit_code != 0 and "frist_name" in result.output
    (news / "body.md").unlink()
    (news / "body.html").write_text("<p>x</p>")
    result = run(app, "create", str(news))
    assert "needs body.md, or both body.html and body.txt" in result.output
    with app.app_context():
        assert db.session.scalar(select(Broadcast.id)) is None
    (news / "body.txt").write_text("x")
    assert "no magnet 'nope'" in run(app, "create", str(news), "--magnet", "nope").output
    assert "no broadcast 99" in run(app, "status", "99").output


def test_at_schedules_and_the_scheduler_pass_starts_it_then(app, tmp_path):
    add_subscribers(app, 3)
    news = folder(tmp_path, subject_txt="Later", body_html="<p>Hi</p>", body_txt="Hi")
    start = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        created = run(app, "create", str(news), "--at", "2026-06-02T09:00:00+00:00")
        broadcast_id = int(re.search(r"broadcast (\d+)", created.output)[1])
        assert "scheduled for 2026-06-02" in run(app, "send", str(broadcast_id), "--yes").output
        assert hand_out(app) == []
    with time_machine.travel(start + timedelta(days=1, minutes=1), tick=False):
        assert len(hand_out(app)) == 3
        assert "state: sending" in run(app, "status", str(broadcast_id)).output

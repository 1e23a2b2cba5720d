"""Publishing a version mid-flight: the impact is shown before anything changes, then each
subscriber gets each remaining step once, in order; a rollback restores the old steps."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from pathlib import Path

import time_machine
from flask import Flask
from sqlalchemy import select

from service.content.magnets import default_magnet
from service.content.versions import history
from service.core.extensions import db
from service.core.models import MagnetPublication, ScheduledEmail
from tests.helpers import api_signup, dispatch_inline, outbox_messages
from tests.sending.test_drip import START, sent_steps, walk

PEOPLE = ["s1@example.com", "s2@example.com", "s3@example.com"]
SLUG = "inside-out-strength"
PUBLISH_AT = START + timedelta(days=4, hours=1)
EDITED_SUBJECT = "Ankles first, {{ greeting_name }}"


def three_at_different_steps(app: Flask) -> None:
    """s1 waits for quad-strength, s2 for ankle-mobility, s3 for knees-over-toes."""
    client = app.test_client()
    for n, address in enumerate(PEOPLE):
        with time_machine.travel(START + timedelta(days=2 * n), tick=False):
            dispatch_inline(app)
            assert api_signup(client, address).status_code == 202
            dispatch_inline(app)
    assert [len(sent_steps(app, a)) for a in PEOPLE] == [3, 2, 1]


def edit(folder: Path) -> None:
    """Add a step after the guide, remove one nobody waits for, lengthen a delay, reword one."""
    path = folder / "sequence.toml"
    text = path.read_text()
    text = text.replace(
        '[[steps]]\nid = "knees-over-toes"',
        '[[steps]]\nid = "welcome-extra"\ndelay = "1d"\ntemplate = "quad-strength"\n\n'
        '[[steps]]\nid = "knees-over-toes"',
    )
    text = text.replace('id = "quad-strength"\ndelay = "2d"', 'id = "quad-strength"\ndelay = "3d"')
    start = text.index('[[steps]]\nid = "real-life-strength"')
    end = text.index('[[steps]]\nid = "train-together"')
    path.write_text(text[:start] + text[end:])
    (folder / "ankle-mobility" / "subject.txt").write_text(EDITED_SUBJECT + "\n")


def schedule_rows(app: Flask) -> list[tuple]:
    with app.app_context():
        return [
            (r.id, r.subscriber_id, r.step_id, r.status, r.due_at)
            for r in db.session.scalars(select(ScheduledEmail).order_by(ScheduledEmail.id))
        ]


def cli(app: Flask, *args: str):
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def publish_edit(app: Flask, tmp_path: Path) -> None:
    """Export, edit, import: the preview first (nothing changes), then --yes."""
    with time_machine.travel(PUBLISH_AT, tick=False):
        cli(app, "content", "export", str(tmp_path / "out"))
        folder = tmp_path / "out" / SLUG
        edit(folder)
        before = schedule_rows(app)
        preview = cli(app, "content", "import", str(folder))
        assert preview.splitlines() == [
            f"{SLUG}: new version",
            "  added step welcome-extra: 1 subscriber waiting move to it",
            "  edited step ankle-mobility: 1 subscriber waiting for it get the new text",
            "  retimed step quad-strength (delay 2d -> 3d): 1 subscriber rescheduled",
            "  removed step real-life-strength: 0 subscribers waiting for it skip it",
            "nothing changed: run again with --yes to apply this",
        ]
        assert schedule_rows(app) == before, "the preview changes nothing"
        applied = cli(app, "content", "import", str(folder), "--yes")
        assert "imported: 1 magnet changed" in applied
        assert "nothing to import" in cli(app, "content", "import", str(folder))


def steps_of(app: Flask, address: str) -> list[str]:
    return [e.step_id for e in sent_steps(app, address)]


def test_publishing_mid_flight_reaches_each_subscriber_once_in_order(app, outbox, tmp_path):
    three_at_different_steps(app)
    publish_edit(app, tmp_path)
    walk(app, PUBLISH_AT, days=40)
    rest = ["quad-strength", "train-together", "coaching"]
    assert steps_of(app, PEOPLE[0]) == ["guide", "knees-over-toes", "ankle-mobility", *rest]
    assert steps_of(app, PEOPLE[1]) == ["guide", "knees-over-toes", "ankle-mobility", *rest]
    assert steps_of(app, PEOPLE[2]) == [
        "guide",
        "welcome-extra",
        "knees-over-toes",
        "ankle-mobility",
        *rest,
    ]
    s1 = sent_steps(app, PEOPLE[0])
    gaps = {b.step_id: b.sent_at - a.sent_at for a, b in itertools.pairwise(s1)}
    assert timedelta(days=3) <= gaps["quad-strength"] < timedelta(days=3, hours=4)
    subjects = {m["Subject"] for m in outbox_messages(outbox) if m["To"] == PEOPLE[1]}
    assert "Ankles first, there" in subjects, "the reworded step went to the one waiting for it"
    with app.app_context():
        magnet = default_magnet()
        [(_v1, [_first]), (v2, [second])] = history(magnet)
        assert magnet.published_version_id == v2.id and second.published_by == "cli"
        kinds = {(c["kind"], c["step"], c["subscribers"]) for c in json.loads(second.impact)}
        assert ("added", "welcome-extra", 1) in kinds


def test_a_rollback_restores_the_old_steps_for_unsent_rows(app, outbox, tmp_path):
    three_at_different_steps(app)
    publish_edit(app, tmp_path)
    with time_machine.travel(PUBLISH_AT + timedelta(minutes=5), tick=False):
        preview = cli(app, "content", "publish", SLUG, "1")
        assert "added step real-life-strength: 0 subscribers waiting move to it" in preview
        assert "removed step welcome-extra: 1 subscriber waiting for it skip it" in preview
        assert "retimed step quad-strength (delay 3d -> 2d): 1 subscriber rescheduled" in preview
        assert preview.rstrip().endswith("nothing changed: run again with --yes to publish")
        assert "v1 published" in cli(app, "content", "publish", SLUG, "1", "--yes")
        assert "in force already" in cli(app, "content", "publish", SLUG, "1", "--yes")
    walk(app, PUBLISH_AT, days=40)
    shipped = [
        "guide",
        "knees-over-toes",
        "ankle-mobility",
        "quad-strength",
        "real-life-strength",
        "train-together",
        "coaching",
    ]
    for address in PEOPLE:
        assert steps_of(app, address) == shipped, address
    s1 = sent_steps(app, PEOPLE[0])
    gaps = {b.step_id: b.sent_at - a.sent_at for a, b in itertools.pairwise(s1)}
    assert timedelta(days=2) <= gaps["quad-strength"] < timedelta(days=2, hours=4)
    with app.app_context():
        publications = db.session.scalars(select(MagnetPublication)).all()
        assert [p.published_by for p in publications] == ["file", "cli", "cli"]

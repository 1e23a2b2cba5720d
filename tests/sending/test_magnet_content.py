"""The default magnet's content: loaded once at first start however many processes start,
kept in step with SEQUENCE_FILE when it is set, and rendered in the sandbox by delivery."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import time_machine
from sqlalchemy import func, select

from service.content.magnet_files import fingerprint, read_folder
from service.content.magnets import default_magnet
from service.content.rendering import TemplateFiles
from service.content.versions import history
from service.core.extensions import db
from service.core.models import (
    EmailStatus,
    Magnet,
    MagnetPublication,
    MagnetVersion,
    Outcome,
    ScheduledEmail,
)
from service.core.settings import SHIPPED_TEMPLATES
from service.sending.context import for_app
from service.sending.delivery import deliver
from tests.conftest import make_app
from tests.helpers import api_signup, dispatch_inline
from tests.sending.test_drip import START, edited_sequence, sent_steps

ROOT = Path(__file__).resolve().parents[2]
STARTS = 4
FIRST_START = """
import sys, time
from service import create_app
from service.core.extensions import db
from service.sending.context import for_app
env = dict(arg.split("=", 1) for arg in sys.argv[2:])
app = create_app(env)
while time.time() < float(sys.argv[1]):  # every process reaches its first context at once
    pass
with app.app_context():
    for_app(app)
    db.session.commit()
"""


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_concurrent_first_starts_make_one_default_version(env):
    app = make_app(env)  # migrated (and on PostgreSQL emptied): no content yet
    with app.app_context():
        default_magnet()  # the row the migration makes, without content: they race for it
        db.session.commit()
        assert count(MagnetVersion) == 0
        db.session.remove()
        db.engine.dispose()
    at = time.time() + 8  # after every interpreter has imported the service
    settings = [f"{k}={v}" for k, v in env.items()]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", FIRST_START, str(at), *settings],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(STARTS)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    with app.app_context():
        assert count(Magnet) == 1
        assert count(MagnetVersion) == 1
        assert count(MagnetPublication) == 1
        magnet = default_magnet()
        assert magnet.slug == "inside-out-strength" and magnet.managed_by_file is None
        [(version, [publication])] = history(magnet)
        assert version.created_by == publication.published_by == "file"
        assert version.fingerprint == fingerprint(read_folder(SHIPPED_TEMPLATES))


def test_a_managed_sequence_file_becomes_a_new_version_when_edited(env, tmp_path):
    sequence_file = edited_sequence(tmp_path, lambda text: text)
    app = make_app({**env, "SEQUENCE_FILE": str(sequence_file)})
    with time_machine.travel(START, tick=False):
        api_signup(app.test_client(), "kai@example.com")
        dispatch_inline(app)
    with app.app_context():
        magnet = default_magnet()
        assert magnet.managed_by_file == str(sequence_file)
        assert [v.number for v, _ in history(magnet)] == [1]
    sequence_file.write_text(
        sequence_file.read_text().replace(
            'id = "knees-over-toes"\ndelay = "2d"', 'id = "knees-over-toes"\ndelay = "3d"'
        )
    )
    with time_machine.travel(START + timedelta(hours=1), tick=False):
        dispatch_inline(app)  # the pass publishes the edit
        dispatch_inline(app)  # and the next finds nothing new
    with app.app_context():
        magnet = default_magnet()
        versions = history(magnet)
        assert [(v.number, v.created_by) for v, _ in versions] == [(1, "file"), (2, "file")]
        assert magnet.published_version_id == versions[1][0].id
        impact = json.loads(versions[1][1][0].impact)
        assert {k: impact[0][k] for k in ("kind", "step", "subscribers")} == {
            "kind": "retimed",
            "step": "knees-over-toes",
            "subscribers": 1,
        }
        row = db.session.scalars(
            select(ScheduledEmail).where(ScheduledEmail.step_id == "knees-over-toes")
        ).one()
        assert row.due_at - row.anchor_at == timedelta(days=3)
    # A template edited alone is a new version too.
    subject = sequence_file.parent / "coaching" / "subject.txt"
    subject.write_text("Shall we train together, {{ greeting_name }}?\n")
    os.utime(subject, ns=(time.time_ns() + 10**9,) * 2)
    with time_machine.travel(START + timedelta(hours=2), tick=False):
        dispatch_inline(app)
    with app.app_context():
        assert [v.number for v, _ in history(default_magnet())] == [1, 2, 3]
    refused = app.test_cli_runner().invoke(args=["content", "import", str(sequence_file.parent)])
    assert refused.exit_code == 1 and "is managed by the file" in refused.output
    refused = app.test_cli_runner().invoke(
        args=["content", "publish", "inside-out-strength", "1", "--yes"]
    )
    assert refused.exit_code == 1 and "is managed by the file" in refused.output


def test_without_sequence_file_the_database_is_the_truth(app, tmp_path):
    """The shipped folder is read once: later the published version is what renders."""
    with app.app_context():
        ctx = for_app(app)
        assert isinstance(ctx.content.templates, TemplateFiles)
        magnet = default_magnet()
        assert ctx.magnet_id == magnet.id and magnet.managed_by_file is None
        [(version, _)] = history(magnet)
        assert ctx.content.templates.key == version.fingerprint


def test_a_template_the_sandbox_refuses_fails_its_email_not_the_worker(app, outbox):
    api_signup(app.test_client(), "eve@example.com")
    with app.app_context():
        ctx = for_app(app)
        assert isinstance(ctx.content.templates, TemplateFiles)
        files = {**ctx.content.templates.files, "guide/subject.txt": "{{ ''.__class__.__mro__ }}"}
        unsafe = TemplateFiles("unsafe" + fingerprint(files), files)  # past load_files' check
        ctx = replace(ctx, content=replace(ctx.content, templates=unsafe))
        row = db.session.scalars(select(ScheduledEmail)).one()
        assert deliver(ctx, row.id) == Outcome.FAILED
        row = db.session.get_one(ScheduledEmail, row.id)
        assert row.status == EmailStatus.FAILED
        assert row.last_error.startswith("cannot render: SecurityError")
    assert not list(outbox.glob("*.eml")), "nothing rendered, nothing sent"
    assert sent_steps(app, "eve@example.com") == []


def test_setting_and_unsetting_sequence_file_hands_the_magnet_over(env, tmp_path):
    from service import create_app

    app = make_app(env)
    with app.app_context():
        for_app(app)
        assert default_magnet().managed_by_file is None
    sequence_file = edited_sequence(tmp_path, lambda text: text.replace('"2d"', '"1d"', 1))
    managed = create_app({**env, "SEQUENCE_FILE": str(sequence_file)})
    with time_machine.travel(START, tick=False):
        dispatch_inline(managed)
    with managed.app_context():
        magnet = default_magnet()
        assert magnet.managed_by_file == str(sequence_file)
        assert [(v.number, v.created_by) for v, _ in history(magnet)] == [(1, "file"), (2, "file")]
    back = create_app(env)
    with back.app_context():
        ctx = for_app(back)
        magnet = default_magnet()
        assert magnet.managed_by_file is None, "without SEQUENCE_FILE the database is the truth"
        assert ctx.content.step("knees-over-toes").delay == timedelta(days=1), "v2 stays"

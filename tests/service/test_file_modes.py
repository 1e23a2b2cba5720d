"""The embedded default's files are the service user's alone: folders 0700, files 0600."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.extensions import db
from tests.conftest import make_app
from tests.helpers import api_signup, dispatch_inline


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The usual 022, whatever the runner's: without care, files would come out 0644."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def test_the_embedded_default_keeps_its_files_private(tmp_path: Path, usual_umask):
    instance = tmp_path / "instance"
    app = make_app({"INSTANCE_PATH": str(instance)})  # SQLite, folder broker, outbox
    client = app.test_client()
    assert api_signup(client, "ann@example.com").status_code == 202
    assert dispatch_inline(app) == ["sent"]
    database = instance / "leadmagnet.sqlite3"
    outbox = instance / "outbox"
    [email] = outbox.glob("*.eml")
    assert mode(instance) == 0o700
    assert mode(outbox) == 0o700
    assert mode(email) == 0o600
    assert mode(instance / "secret_key") == 0o600
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        assert mode(path) == 0o600, path  # the -wal and -shm exist while connected
    with app.app_context():
        db.engine.dispose()


def test_files_made_before_are_tightened_at_start(tmp_path: Path, usual_umask):
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)
    database = instance / "leadmagnet.sqlite3"
    database.touch(mode=0o644)
    app = make_app({"INSTANCE_PATH": str(instance)})
    assert mode(instance) == 0o700
    assert mode(database) == 0o600
    with app.app_context():
        db.engine.dispose()


def test_an_outbox_folder_elsewhere_is_made_private(env: dict[str, str], usual_umask):
    app = make_app(env)  # EMAIL_URL=file://<tmp>/outbox, not under the instance folder
    assert api_signup(app.test_client(), "ann@example.com").status_code == 202
    assert dispatch_inline(app) == ["sent"]
    outbox = Path(env["EMAIL_URL"].removeprefix("file://"))
    [email] = outbox.glob("*.eml")
    assert (mode(outbox), mode(email)) == (0o700, 0o600)

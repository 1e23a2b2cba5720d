"""GET /readyz: database, broker, mail and schema version, each named when it fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from flask import Flask
from flask_migrate import stamp

from tests.conftest import free_port, make_app


def ready(app: Flask):
    return app.test_client().get("/readyz")


def test_ready_when_every_part_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ok",
        "database": "ok",
        "broker": "ok",
        "smtp": "ok",
        "migrations": "ok",
    }


def test_an_smtp_server_that_answers_is_ready(env: dict[str, str], smtpd):
    assert ready(make_app({**env, "EMAIL_URL": smtpd.url})).status_code == 200


def test_an_smtp_server_that_is_not_there_is_named(env: dict[str, str]):
    response = ready(make_app({**env, "EMAIL_URL": f"smtp://127.0.0.1:{free_port()}"}))
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert set(body["failing"]) == {"smtp"}
    assert "unreachable" in body["failing"]["smtp"]


def test_an_outbox_that_cannot_be_written_is_named(env: dict[str, str], tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # even root cannot make a folder inside a file
    response = ready(make_app({**env, "EMAIL_URL": f"file://{blocker / 'outbox'}"}))
    assert response.status_code == 503
    assert set(response.get_json()["failing"]) == {"smtp"}


@pytest.fixture
def one_migration_behind(app: Flask) -> Iterator[Flask]:
    """The database stamped at the revision before head, as if the code had been upgraded
    and `leadmagnet db upgrade` not yet run; stamped back afterwards."""
    directory = app.extensions["migrate"].directory
    script = ScriptDirectory(directory)
    head = script.get_current_head()
    previous = script.get_revision(head).down_revision
    with app.app_context():
        stamp(directory=directory, revision=previous)
    try:
        yield app
    finally:
        with app.app_context():
            stamp(directory=directory, revision=head)


def test_a_schema_behind_the_code_is_named(one_migration_behind: Flask):
    response = ready(one_migration_behind)
    assert response.status_code == 503
    failing = response.get_json()["failing"]
    assert set(failing) == {"migrations"}
    assert "leadmagnet db upgrade" in failing["migrations"]
    # Liveness does not look at the schema: the process itself is fine.
    assert one_migration_behind.test_client().get("/healthz").status_code == 200


def test_a_database_that_is_not_there_is_named_once(env: dict[str, str], tmp_path: Path):
    from service import create_app

    gone = f"sqlite:///{tmp_path / 'no-such-folder' / 'db.sqlite3'}"
    response = ready(create_app({**env, "DATABASE_URL": gone}))
    assert response.status_code == 503
    assert set(response.get_json()["failing"]) == {"database"}  # not "migrations" as well


def test_a_database_never_migrated_is_named(env: dict[str, str], tmp_path: Path):
    from service import create_app

    empty = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    response = ready(create_app({**env, "DATABASE_URL": empty}))
    assert response.status_code == 503
    failing = response.get_json()["failing"]
    assert set(failing) == {"migrations"}
    assert failing["migrations"].startswith("database schema at none")

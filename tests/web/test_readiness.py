"""GET /readyz: database, broker, mail and schema version, each named when it fails."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from alembic.script import ScriptDirectory
from flask import Flask
from flask_migrate import stamp

from service.insights.readiness import MAIL_PROBE_TTL
from tests.conftest import free_port, make_app, s3_client, s3_env
from tests.smtp import RecordingSMTPServer

START = datetime(2027, 5, 3, 8, 0, tzinfo=UTC)


def ready(app: Flask):
    return app.test_client().get("/readyz")


def test_ready_when_every_part_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ok",
        "database": "ok",
        "broker": "ok",
        "email": "ok",
        "storage": "ok",
        "migrations": "ok",
    }


def test_an_smtp_server_that_answers_is_ready(env: dict[str, str], smtpd):
    assert ready(make_app({**env, "EMAIL_URL": smtpd.url})).status_code == 200


def test_an_smtp_server_that_is_not_there_is_named_and_only_named(
    env: dict[str, str], caplog: pytest.LogCaptureFixture
):
    port = free_port()
    with caplog.at_level(logging.WARNING, logger="service.insights.readiness"):
        response = ready(make_app({**env, "EMAIL_URL": f"smtp://127.0.0.1:{port}"}))
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "failing": {"email": "unreachable"}}
    # Which server, and why, is for the operator's log, not for anonymous callers.
    assert str(port) not in response.get_data(as_text=True)
    assert f"mail server 127.0.0.1:{port} unreachable: ConnectionRefusedError" in caplog.text


def test_a_flood_of_readiness_probes_opens_one_smtp_session_per_few_seconds(env: dict[str, str]):
    port = free_port()
    app = make_app({**env, "EMAIL_URL": f"smtp://127.0.0.1:{port}"})
    client = app.test_client()
    with time_machine.travel(START, tick=False) as traveller:
        assert client.get("/readyz").status_code == 503  # nothing listens yet
        server = RecordingSMTPServer(port=port)
        server.start()
        try:
            # Within the probe's lifetime the last answer stands: no new session was opened
            # (one would have found the server).
            for _ in range(20):
                assert client.get("/readyz").status_code == 503
            traveller.shift(MAIL_PROBE_TTL + timedelta(seconds=1))
            answer = client.get("/readyz")
            assert answer.status_code == 200
            assert json.loads(answer.get_data())["email"] == "ok"
        finally:
            server.stop()


def test_an_outbox_that_cannot_be_written_is_named(env: dict[str, str], tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # even root cannot make a folder inside a file
    response = ready(make_app({**env, "EMAIL_URL": f"file://{blocker / 'outbox'}"}))
    assert response.status_code == 503
    assert response.get_json()["failing"] == {"email": "unreachable"}
    assert str(tmp_path) not in response.get_data(as_text=True)


def test_a_store_that_does_not_answer_is_named_and_only_named(
    env: dict[str, str], s3_endpoint: str, caplog: pytest.LogCaptureFixture
):
    with caplog.at_level(logging.WARNING, logger="service.insights.readiness"):
        response = ready(make_app({**env, **s3_env(s3_endpoint, "no-such-bucket")}))
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "failing": {"storage": "unreachable"}}
    assert "no-such-bucket" not in response.get_data(as_text=True)
    assert f"s3://no-such-bucket at {s3_endpoint}: no such bucket" in caplog.text


def test_a_store_is_asked_at_most_once_per_few_seconds(env: dict[str, str], s3_endpoint: str):
    bucket = f"made-later-{uuid.uuid4().hex[:12]}"
    client = make_app({**env, **s3_env(s3_endpoint, bucket)}).test_client()
    with time_machine.travel(START, tick=False) as traveller:
        assert client.get("/readyz").status_code == 503  # no bucket yet
        s3_client(s3_endpoint).create_bucket(Bucket=bucket)
        try:
            assert client.get("/readyz").status_code == 503  # the last answer stands
            traveller.shift(MAIL_PROBE_TTL + timedelta(seconds=1))
            assert client.get("/readyz").status_code == 200
        finally:
            s3_client(s3_endpoint).delete_bucket(Bucket=bucket)


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

"""Shared fixtures: the app on SQLite and on PostgreSQL, a recording SMTP server, service probes."""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import socket
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from service import create_app
from service.core.extensions import db
from tests.smtp import RecordingSMTPServer

# The app factory logs INFO to stderr; aiosmtpd's per-command INFO lines come from its own
# thread, often between tests when nothing captures them: only its warnings are wanted.
logging.getLogger("mail.log").setLevel(logging.WARNING)

# On CI every service test is mandatory: a missing PostgreSQL or Redis fails, never skips.
REQUIRE_SERVICES = os.environ.get("LEADMAGNET_REQUIRE_SERVICES") == "1"
PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "test-key-4mV9qL2xR7tZ3wN8kP5hS1jD6fB"
PUBLIC_URL = "https://news.example.org"


def unavailable(what: str, why: str) -> None:
    message = f"{what} is not reachable ({why})"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message}; LEADMAGNET_REQUIRE_SERVICES=1 makes it mandatory")
    pytest.skip(f"{message}; set LEADMAGNET_REQUIRE_SERVICES=1 to make this a failure")


REDIS_DATABASES = range(1, 16)  # database 0 is left to whoever else uses the server
REDIS_LEASE = 3600  # seconds: a run killed outright frees its databases after this


@contextmanager
def private_redis_db(base_url: str) -> Iterator[str]:
    """A Redis database of this test's own, leased from the shared server for as long as the
    test runs: another run (or another developer's tests) on the same server never gets the
    same number, so emptying it wipes nobody else's queue."""
    import redis

    root = base_url.rsplit("/", 1)[0]
    leases = redis.Redis.from_url(f"{root}/0")
    owner = f"{os.getpid()}-{uuid.uuid4().hex}"
    number = next(
        (n for n in REDIS_DATABASES if leases.set(_lease_key(n), owner, nx=True, ex=REDIS_LEASE)),
        None,
    )
    if number is None:
        pytest.fail(f"all Redis databases {REDIS_DATABASES} are leased by other test runs")
    url = f"{root}/{number}"
    redis.Redis.from_url(url).flushdb()  # what a killed run left behind
    try:
        yield url
    finally:
        redis.Redis.from_url(url).flushdb()
        if leases.get(_lease_key(number)) == owner.encode():
            leases.delete(_lease_key(number))


def _lease_key(number: int) -> str:
    return f"leadmagnet-tests:redis-db:{number}"


@pytest.fixture
def redis_db(redis_url: str) -> Iterator[str]:
    """The URL of a Redis database leased to this test alone (see private_redis_db)."""
    with private_redis_db(redis_url) as url:
        yield url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def scratch_database(label: str) -> Iterator[tuple[str, Engine]]:
    """A database of this test's own (it may be closed to connections without disturbing
    anyone), and an admin engine connected elsewhere to do that; dropped at the end."""
    admin_url = make_url(PG_URL).set(drivername="postgresql+psycopg")
    admin = create_engine(
        admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        unavailable("PostgreSQL", f"{type(exc).__name__}: {exc}".splitlines()[0])
    name = f"leadmagnet_{label}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False), admin
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A scratch database of our own on the PostgreSQL server, dropped at the end."""
    with scratch_database("test") as (url, _admin):
        yield url


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        unavailable("Redis", f"{type(exc).__name__}: {exc}")
    return REDIS_URL


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.sqlite3'}"
    return request.getfixturevalue("pg_database")


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    """The settings of one test: its own instance folder, database and outbox."""
    return {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET,
        "EMAIL_URL": f"file://{tmp_path / 'outbox'}",
        "PUBLIC_URL": PUBLIC_URL,
        "RATELIMIT_ENABLED": "false",
    }


# Migrating a new SQLite file runs every migration (most of an app fixture's time): each
# process migrates one, then each test's file starts as a copy of it.
_MIGRATED_SQLITE: list[Path] = []


def _reset_schema(app: Flask) -> None:
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    path = Path(url.database or "")
    fresh = url.get_backend_name() == "sqlite" and path.is_file() and path.stat().st_size == 0
    if fresh and _MIGRATED_SQLITE and not Path(f"{path}-wal").exists():
        shutil.copyfile(_MIGRATED_SQLITE[0], path)  # into the 0600 file create_app made
        return
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        if db.engine.dialect.name == "postgresql":
            _empty_postgres()
    if fresh and not _MIGRATED_SQLITE:
        _MIGRATED_SQLITE.append(_keep_template(path))


def _empty_postgres() -> None:
    """Every row gone and every id back at 1, as TRUNCATE ... RESTART IDENTITY leaves them,
    by DELETE: on tables this small TRUNCATE's new files cost ~90 ms a test, DELETE ~8 ms.
    Dependents go first; the figure tables last, as the deletes' triggers write to them."""
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    written = [name for name in tables if name.startswith("figure_")]
    cycles = [  # keys that close a cycle of tables (magnet <-> its published version)
        (fk.parent.table.name, fk.parent.name)
        for table in db.metadata.sorted_tables
        for fk in table.foreign_keys
        if fk.use_alter
    ]
    with db.engine.begin() as conn:
        for name, column in cycles:
            conn.execute(text(f'UPDATE "{name}" SET "{column}" = NULL'))
        for name in [n for n in tables if n not in written] + written:
            conn.execute(text(f'DELETE FROM "{name}"'))
        conn.execute(
            text(
                "SELECT setval(format('%I.%I', schemaname, sequencename), 1, false) "
                "FROM pg_sequences WHERE schemaname = current_schema()"
            )
        )


def _keep_template(migrated: Path) -> Path:
    """A copy of a just-migrated SQLite file (its WAL included, through SQLite's backup)."""
    template = Path(tempfile.mkdtemp(prefix="leadmagnet-migrated-")) / "template.sqlite3"
    with closing(sqlite3.connect(migrated)) as src, closing(sqlite3.connect(template)) as dst:
        src.backup(dst)
    atexit.register(shutil.rmtree, template.parent, True)
    return template


def make_app(env: dict[str, str]) -> Flask:
    app = create_app(env)
    app.config["TESTING"] = True
    _reset_schema(app)
    return app


@pytest.fixture
def app(env: dict[str, str]) -> Iterator[Flask]:
    app = make_app(env)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def pg_app(tmp_path: Path, pg_database: str) -> Iterator[Flask]:
    """The app on PostgreSQL alone: SQLite runs one writer at a time, nothing interleaves."""
    app = make_app(
        {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": pg_database,
            "SECRET_KEY": SECRET,
            "EMAIL_URL": f"file://{tmp_path / 'outbox'}",
            "RATELIMIT_ENABLED": "false",
        }
    )
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@pytest.fixture(scope="module")
def render_app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    """For the email tests: rendering reads settings and the sequence file only, so no
    schema, and one app per module."""
    folder = tmp_path_factory.mktemp("render")
    return create_app(
        {
            "INSTANCE_PATH": str(folder / "instance"),
            "DATABASE_URL": f"sqlite:///{folder / 'unused.sqlite3'}",
            "SECRET_KEY": SECRET,
            "EMAIL_URL": f"file://{folder / 'outbox'}",
            "PUBLIC_URL": PUBLIC_URL,
        }
    )


@pytest.fixture
def outbox(env: dict[str, str]) -> Path:
    return Path(env["EMAIL_URL"].removeprefix("file://"))


@pytest.fixture
def smtpd() -> Iterator[RecordingSMTPServer]:
    server = RecordingSMTPServer(port=free_port())
    server.start()
    yield server
    server.stop()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """On CI (services mandatory) a skipped test is a failure: nothing may pass by skipping."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if REQUIRE_SERVICES and skipped and session.exitstatus == 0:
        reporter.write_line(f"{len(skipped)} test(s) skipped while LEADMAGNET_REQUIRE_SERVICES=1")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3-compatible server (moto's, in a thread), one per test session: its URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


S3_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret"}


def s3_client(endpoint: str):
    """A boto3 client of the test server, to look at a bucket behind the store's back."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_KEYS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_KEYS["AWS_SECRET_ACCESS_KEY"],
    )


def s3_env(endpoint: str, bucket: str, prefix: str = "files") -> dict[str, str]:
    """The settings that keep uploaded files in `bucket` on the test's S3 server."""
    return {
        "STORAGE_URL": f"s3://{bucket}/{prefix}",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
        **S3_KEYS,
    }


@pytest.fixture(params=["folder", "s3"])
def storage_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Settings for each store: the folder (the default: nothing to set), or a bucket of
    this test's own on the session's S3 server."""
    if request.param == "folder":
        return {}
    endpoint = request.getfixturevalue("s3_endpoint")
    return s3_env(endpoint, new_bucket(endpoint))


def new_bucket(endpoint: str) -> str:
    """A bucket of the caller's own on the test server: its name."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3_client(endpoint).create_bucket(Bucket=name)
    return name

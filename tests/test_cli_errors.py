"""The command line's errors: one line each, every one starting `leadmagnet: `, never a
traceback nor click's `Error:`; and no command but serve and db makes an instance."""

from __future__ import annotations

import fcntl
import os
import socket
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.conftest import free_port, scratch_database
from tests.procs import BIN, clean_env

KEY = "cli-test-key-Jn4Vx8Qm2Rt7Kz3Wp9Lb6Hs"
NO_INSTANCE = (
    "leadmagnet: no instance in {}; run from the folder where you ran serve, or set INSTANCE_PATH"
)


def leadmagnet(*args: str, cwd: Path, stdin: str = "", **settings: str):
    env = clean_env(**settings)
    return subprocess.run(
        [str(BIN / "leadmagnet"), *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode != 0, done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("leadmagnet: ") and "Error:" not in done.stderr
    return lines[0]


def test_an_unreachable_database_is_one_line(tmp_path):
    settings = {
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere",
        "SECRET_KEY": KEY,
        "INSTANCE_PATH": str(tmp_path / "instance"),
    }
    for command in (["dispatch"], ["db", "upgrade"], ["serve", "--port", str(free_port())]):
        done = leadmagnet(*command, cwd=tmp_path, **settings)
        assert "Traceback" not in done.stderr
        assert one_line(done).startswith(
            "leadmagnet: cannot reach the database named by DATABASE_URL"
        )


@pytest.mark.parametrize(
    "command",
    [
        ["dispatch"],
        ["admin", "create", "owner@example.com", "--password-stdin"],
        ["subscribers", "show", "ann@example.com"],
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_away_from_its_instance_a_command_says_so_and_makes_none(tmp_path, command):
    done = leadmagnet(*command, cwd=tmp_path, stdin="correct horse battery staple\n")
    assert one_line(done) == NO_INSTANCE.format(tmp_path / "instance")
    assert list(tmp_path.iterdir()) == [], "no instance folder, no secret key, no database"


def test_help_lists_every_command_without_an_instance_and_makes_none(tmp_path):
    done = leadmagnet("--help", cwd=tmp_path)
    assert done.returncode == 0
    for name in ("serve", "admin", "subscribers", "dispatch", "check", "db"):
        assert f"  {name} " in done.stdout
    assert leadmagnet("admin", "create", "--help", cwd=tmp_path).returncode == 0
    assert list(tmp_path.iterdir()) == []


def test_db_upgrade_makes_the_instance_and_then_commands_find_it(tmp_path):
    assert leadmagnet("db", "upgrade", cwd=tmp_path).returncode == 0
    assert (tmp_path / "instance" / "secret_key").is_file()
    listed = leadmagnet("admin", "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr


def test_an_unmigrated_database_says_to_migrate_it(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    sqlite3.connect(instance / "leadmagnet.sqlite3").close()  # there, but empty
    (instance / "secret_key").write_text(KEY)
    for command in (["admin", "list"], ["subscribers", "show", "ann@example.com"]):
        line = one_line(leadmagnet(*command, cwd=tmp_path))
        assert line == "leadmagnet: the database is not migrated: run leadmagnet db upgrade"


@pytest.mark.postgres
def test_an_empty_postgresql_database_says_to_migrate_it(tmp_path):
    """PostgreSQL names a missing table another way (UndefinedTable): the same line."""
    with scratch_database("unmigrated") as (url, _admin):
        done = leadmagnet("admin", "list", cwd=tmp_path, DATABASE_URL=url, SECRET_KEY=KEY)
    assert one_line(done) == "leadmagnet: the database is not migrated: run leadmagnet db upgrade"


def test_the_database_url_is_judged_before_the_secret_key(tmp_path):
    line = one_line(leadmagnet("db", "upgrade", cwd=tmp_path, DATABASE_URL="mysql://db/leads"))
    assert line == (
        "leadmagnet: setting DATABASE_URL must be sqlite:/// or postgresql://, not mysql://"
    )


def test_a_postgresql_url_without_a_database_name_is_refused(tmp_path):
    done = leadmagnet(
        "db",
        "upgrade",
        cwd=tmp_path,
        DATABASE_URL="postgresql://postgres@127.0.0.1:5432",
        SECRET_KEY=KEY,
    )
    assert one_line(done).startswith("leadmagnet: setting DATABASE_URL names no database")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["admin", "create"], "leadmagnet: Missing argument 'EMAIL'."),
        (["serve", "--port", "x"], "leadmagnet: Invalid value for '--port'"),
        (["subscribers", "show", "nobody@example.com"], "leadmagnet: no subscriber nobody@"),
    ],
)
def test_usage_and_command_errors_carry_the_prefix(tmp_path, args, message):
    assert leadmagnet("db", "upgrade", cwd=tmp_path).returncode == 0
    assert one_line(leadmagnet(*args, cwd=tmp_path)).startswith(message)


def test_serve_on_a_port_in_use_stops_at_once_with_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = leadmagnet("serve", "--port", str(port), cwd=tmp_path)
    assert one_line(done) == f"leadmagnet: port {port} is in use; choose another with --port"
    assert "serving" not in done.stdout
    assert not (tmp_path / "instance" / "worker.ready").exists(), "no worker was started"


def test_serve_on_an_instance_another_serve_holds_stops_with_one_line(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    with (instance / "serve.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write(f"{os.getpid()}\n")
        held.flush()
        done = leadmagnet("serve", "--port", str(free_port()), cwd=tmp_path)
    assert one_line(done) == (
        f"leadmagnet: another serve (pid {os.getpid()}) is running on the instance folder "
        f"{instance}; stop it first, or give this one its own INSTANCE_PATH"
    )
    assert not (instance / "worker.ready").exists(), "no worker was started"

"""`leadmagnet admin create` and `admin list`: owners with scrypt-hashed passwords."""

from __future__ import annotations

from datetime import UTC, datetime

import time_machine
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from werkzeug.security import check_password_hash

from service import owners
from service.extensions import db
from service.models import Owner

PASSWORD = "a long enough password"


def stored(app) -> list[Owner]:
    with app.app_context():
        return list(db.session.query(Owner).order_by(Owner.email))


def test_create_asks_for_the_password_twice_without_echo(app):
    result = app.test_cli_runner().invoke(
        args=["admin", "create", "Jo@Example.com"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    assert "created owner jo@example.com" in result.output
    assert PASSWORD not in result.output  # hide_input: the password is never echoed
    assert result.output.count("Password") == 1 and "Repeat for confirmation" in result.output
    [owner] = stored(app)
    assert owner.email == "jo@example.com"
    assert owner.password_hash.startswith("scrypt:")
    assert check_password_hash(owner.password_hash, PASSWORD)


def test_two_different_passwords_are_asked_again(app):
    result = app.test_cli_runner().invoke(
        args=["admin", "create", "jo@example.com"],
        input=f"{PASSWORD}\nsomething else entirely\n{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert "do not match" in result.output
    assert check_password_hash(stored(app)[0].password_hash, PASSWORD)


def test_create_reads_the_password_from_stdin(app):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["admin", "create", "jo@example.com", "--password-stdin"], input=PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    assert "Password" not in result.output
    assert check_password_hash(stored(app)[0].password_hash, PASSWORD)


def test_create_refuses_short_passwords_bad_addresses_and_twins(app):
    runner = app.test_cli_runner()
    stdin = ["admin", "create", "--password-stdin"]
    short = runner.invoke(args=[*stdin, "jo@example.com"], input="short\n")
    assert short.exit_code == 1 and "at least 12 characters" in short.output
    bad = runner.invoke(args=[*stdin, "not-an-address"], input=PASSWORD + "\n")
    assert bad.exit_code == 1 and "not an email address" in bad.output
    assert runner.invoke(args=[*stdin, "jo@example.com"], input=PASSWORD + "\n").exit_code == 0
    twin = runner.invoke(args=[*stdin, "JO@example.com"], input=PASSWORD + "\n")
    assert twin.exit_code == 1 and "exists already" in twin.output
    assert [o.email for o in stored(app)] == ["jo@example.com"]


def test_list_shows_each_owner_and_their_last_login(app):
    runner = app.test_cli_runner()
    assert "no owners yet" in runner.invoke(args=["admin", "list"]).output
    with app.app_context(), time_machine.travel(datetime(2026, 3, 2, 9, 30, tzinfo=UTC)):
        owners.create("b@example.com", PASSWORD)
        owners.create("a@example.com", PASSWORD)
        assert owners.authenticate("B@example.com", PASSWORD) is not None
        assert owners.authenticate("a@example.com", "wrong password!!") is None
    lines = runner.invoke(args=["admin", "list"]).output.splitlines()
    assert lines == [
        "a@example.com\tcreated 2026-03-02 09:30 UTC\tlast login never",
        "b@example.com\tcreated 2026-03-02 09:30 UTC\tlast login 2026-03-02 09:30 UTC",
    ]


def test_password_changes_an_owner_s_password_and_refuses_what_create_refuses(app):
    runner = app.test_cli_runner()
    stdin = ["admin", "password", "--password-stdin"]
    missing = runner.invoke(args=[*stdin, "jo@example.com"], input=PASSWORD + "\n")
    assert missing.exit_code == 1 and "there is no owner jo@example.com" in missing.output
    with app.app_context():
        owners.create("jo@example.com", PASSWORD)
    short = runner.invoke(args=[*stdin, "jo@example.com"], input="short\n")
    assert short.exit_code == 1 and "at least 12 characters" in short.output
    [owner] = stored(app)
    assert check_password_hash(owner.password_hash, PASSWORD) and owner.session_generation == 0
    asked = runner.invoke(
        args=["admin", "password", "JO@example.com"], input="another password!\n" * 2
    )
    assert asked.exit_code == 0 and "another password!" not in asked.output
    [owner] = stored(app)
    assert check_password_hash(owner.password_hash, "another password!")
    assert owner.session_generation == 1


def test_the_session_generation_migration_goes_down_and_up(app):
    directory = app.extensions["migrate"].directory
    before = ScriptDirectory(directory).get_revision("0007").down_revision
    with app.app_context():
        owners.create("jo@example.com", PASSWORD)
        db.session.remove()
        downgrade(directory=directory, revision=before)
        upgrade(directory=directory)
    [owner] = stored(app)
    assert owner.email == "jo@example.com" and owner.session_generation == 0

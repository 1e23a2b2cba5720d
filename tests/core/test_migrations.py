"""Migrations: 0006 on databases that hold rows (keys backfilled, nothing lost, reversible),
and the whole chain building exactly the schema the models describe."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_migrate import downgrade, upgrade
from itsdangerous import URLSafeSerializer

from service import create_app
from service.core import tokens
from service.core.extensions import db
from service.core.settings import settings_of
from tests.conftest import SECRET, scratch_database

NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
# The tables as revision 0005 left them, only the columns a row needs.
SUBSCRIBER = sa.table(
    "subscriber",
    *(sa.column(c) for c in ("id", "email", "email_key", "status", "guide_downloads")),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
CONSENT = sa.table(
    "consent_record",
    *(sa.column(c) for c in ("subscriber_id", "action", "text", "text_version")),
    *(sa.column(c) for c in ("text_sha256", "source")),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
EMAIL = sa.table(
    "scheduled_email",
    *(sa.column(c) for c in ("subscriber_id", "step_id", "purpose", "status", "attempts")),
    sa.column("message_id"),
    *(sa.column(c, sa.DateTime(timezone=True)) for c in ("anchor_at", "due_at", "created_at")),
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def bare_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """An app on an empty database of this test's own, with no schema yet."""
    if request.param == "sqlite":
        yield from _app(tmp_path, f"sqlite:///{tmp_path / 'old.sqlite3'}")
        return
    with scratch_database("migration") as (url, _admin):
        yield from _app(tmp_path, url)


def _app(tmp_path: Path, url: str) -> Iterator[Flask]:
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": url,
            "SECRET_KEY": SECRET,
            "EMAIL_URL": f"file://{tmp_path / 'outbox'}",
            "PUBLIC_URL": "https://news.example.org",
            "RATELIMIT_ENABLED": "false",
        }
    )
    app.config["TESTING"] = True
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def seed_0005(app: Flask, addresses: list[str]) -> list[int]:
    """Migrate to 0005 and write subscribers there, each with a consent and an email, as the
    code before 0006 did; return their ids."""
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory, revision="0005")
        ids = []
        with db.engine.begin() as conn:
            for address in addresses:
                row = {"email": address, "email_key": address, "status": "active"}
                n = conn.scalar(
                    SUBSCRIBER.insert().returning(SUBSCRIBER.c.id),
                    {**row, "guide_downloads": 0, "created_at": NOW, "updated_at": NOW},
                )
                ids.append(n)
                conn.execute(
                    CONSENT.insert(),
                    {"subscriber_id": n, "action": "consent", "text": "Yes, email me."}
                    | {"text_version": "1", "text_sha256": "0" * 64, "source": "api"}
                    | {"created_at": NOW},
                )
                conn.execute(
                    EMAIL.insert(),
                    {"subscriber_id": n, "step_id": "guide", "purpose": "drip"}
                    | {"status": "sent", "attempts": 1, "message_id": f"<{n}@old.example>"}
                    | {"anchor_at": NOW, "due_at": NOW, "created_at": NOW},
                )
        return ids


def head(app: Flask) -> None:
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)


def subscriber_rows(app: Flask) -> list[dict]:
    with app.app_context(), db.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM subscriber ORDER BY id")).mappings()
        return [dict(row) for row in rows]


def children(app: Flask) -> tuple[int, int]:
    """How many consent records and scheduled emails there are."""
    with app.app_context(), db.engine.connect() as conn:
        count = "SELECT count(*) FROM {}"
        return (
            conn.scalar(sa.text(count.format("consent_record"))),
            conn.scalar(sa.text(count.format("scheduled_email"))),
        )


def test_upgrade_gives_every_existing_row_a_random_key_and_legacy_links(bare_app: Flask):
    ids = seed_0005(bare_app, [f"p{n}@example.com" for n in range(5)])
    head(bare_app)
    rows = subscriber_rows(bare_app)
    assert [row["id"] for row in rows] == ids
    keys = [row["token_key"] for row in rows]
    assert all(isinstance(key, str) and len(key) >= 22 for key in keys)
    assert len(set(keys)) == len(keys)
    assert all(row["legacy_tokens"] for row in rows)
    # The SQLite rebuild runs with foreign keys off: their cascade would have emptied these.
    assert children(bare_app) == (5, 5)


def test_rows_made_after_the_upgrade_have_no_legacy_links(bare_app: Flask):
    from service.core.models import Subscriber

    seed_0005(bare_app, ["old@example.com"])
    head(bare_app)
    with bare_app.app_context():
        db.session.add(
            Subscriber(email="new@example.com", email_key="new@example.com", created_at=NOW)
        )
        db.session.commit()
    old, new = subscriber_rows(bare_app)
    assert old["legacy_tokens"] and not new["legacy_tokens"]
    assert new["token_key"] and new["token_key"] != old["token_key"]


@pytest.mark.parametrize("bare_app", ["sqlite"], indirect=True)
def test_sqlite_ids_are_never_handed_out_again_after_the_upgrade(bare_app: Flask):
    from service.core.models import Subscriber

    seed_0005(bare_app, ["a@example.com", "b@example.com"])
    head(bare_app)
    with bare_app.app_context():
        db.session.delete(db.session.get(Subscriber, 2))
        db.session.commit()
        db.session.add(Subscriber(email="c@example.com", email_key="c@example.com"))
        db.session.commit()
    assert [row["id"] for row in subscriber_rows(bare_app)] == [1, 3]


def test_upgrade_downgrade_upgrade_keeps_the_rows(bare_app: Flask):
    seed_0005(bare_app, ["a@example.com", "b@example.com"])
    head(bare_app)
    with bare_app.app_context():
        # To 0005 by name: later migrations (0007, 0008) stack on top of 0006.
        downgrade(directory=bare_app.extensions["migrate"].directory, revision="0005")
    rows = subscriber_rows(bare_app)
    assert [row["email"] for row in rows] == ["a@example.com", "b@example.com"]
    assert "token_key" not in rows[0] and "legacy_tokens" not in rows[0]
    assert children(bare_app) == (2, 2)
    head(bare_app)
    rows = subscriber_rows(bare_app)
    assert all(row["token_key"] and row["legacy_tokens"] for row in rows)
    assert children(bare_app) == (2, 2)


def test_an_id_only_link_from_before_the_upgrade_still_works(bare_app: Flask):
    """Emails already in inboxes carry the old links: RFC 8058 unsubscribes must keep working."""
    [old] = seed_0005(bare_app, ["old@example.com"])
    head(bare_app)
    keys = list(reversed(settings_of(bare_app).secret_keys))

    def link(purpose: str) -> str:  # as the code before 0006 made them
        return f"/{purpose}/" + URLSafeSerializer(keys, salt=purpose).dumps(old)

    client = bare_app.test_client()
    assert client.get(link(tokens.GUIDE)).status_code == 200
    assert client.get(link(tokens.UNSUBSCRIBE)).status_code == 200
    answer = client.post(link(tokens.UNSUBSCRIBE), data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200
    assert [row["status"] for row in subscriber_rows(bare_app)] == ["unsubscribed"]


@pytest.mark.parametrize("bare_app", ["sqlite"], indirect=True)
def test_sqlite_foreign_keys_hold_again_after_the_upgrade(bare_app: Flask):
    """Migrations run with them off; the pooled connection must not keep it that way."""
    seed_0005(bare_app, ["gone@example.com"])
    head(bare_app)
    with bare_app.app_context():
        db.session.execute(sa.text("DELETE FROM subscriber"))
        db.session.commit()
    assert children(bare_app) == (0, 0)  # ON DELETE CASCADE took the person's records


# SQLite cannot add a foreign key to an existing table, and magnet <-> magnet_version is a
# cycle: that one constraint exists on PostgreSQL only (migration 0010).
SQLITE_ONLY_GAPS = {("add_fk", "fk_magnet_published_version")}


def test_the_migrations_build_exactly_the_schema_the_models_describe(bare_app: Flask):
    """A column, index or constraint in the models but not in a migration (or the reverse)
    would work in tests, which make tables from the migrations, until a database upgraded
    from an older release met it."""
    head(bare_app)
    with bare_app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        found = {_describe(diff) for diff in compare_metadata(context, db.metadata)}
        if conn.dialect.name == "sqlite":
            found -= SQLITE_ONLY_GAPS
    assert not found


def _describe(diff: object) -> tuple[str, ...]:
    """('add_fk', name) for a constraint; the whole repr where the diff is something else."""
    if isinstance(diff, tuple) and isinstance(diff[0], str):
        name = getattr(diff[1], "name", None)
        return (diff[0], str(name)) if name else (diff[0], repr(diff[1:]))
    return ("modified", repr(diff))


def _triggers(conn: sa.Connection) -> dict[str, str]:
    """Every trigger and trigger function of the database, by name: its definition as the
    server keeps it (PostgreSQL: the trigger and its function; SQLite: the CREATE TRIGGER)."""
    if conn.dialect.name == "postgresql":
        rows = conn.execute(
            sa.text(
                "SELECT 'trigger ' || t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t "
                "WHERE NOT t.tgisinternal UNION ALL "
                "SELECT 'function ' || p.proname, pg_get_functiondef(p.oid) FROM pg_proc p "
                "WHERE p.pronamespace = 'public'::regnamespace"
            )
        )
    else:
        rows = conn.execute(sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))
    return {name: sql for name, sql in rows}


def test_the_migrations_create_exactly_the_triggers_the_live_modules_create(bare_app: Flask):
    """An old migration runs a frozen copy of its triggers; the live modules (rollup_sql,
    kept_sql) may change only with a migration that creates what they now create."""
    from service.insights import kept_sql, rollup_sql

    head(bare_app)
    with bare_app.app_context(), db.engine.begin() as conn:
        migrated = _triggers(conn)
        for module in (rollup_sql, kept_sql):
            module.drop_triggers(conn)
        assert _triggers(conn) == {}  # none the live modules do not know of
        for module in (rollup_sql, kept_sql):
            module.create_triggers(conn)
        assert _triggers(conn) == migrated
        assert any("figures_report_in_update" in name for name in migrated)


# The frozen copies old migrations run (service/migrations/frozen): a new one is added with
# its migration; an edit of one would change what a database upgraded long ago went through.
FROZEN = {
    "__init__.py": "cb5fb329c37e1dd7",
    "ddl_0020.py": "63f0ae5ec90d5b16",
    "figures_0013.py": "e2c779118a6eed93",
    "figures_0020.py": "8b7bff86e4b9da1d",
    "kept_0017.py": "fba468d28c21a554",
}


def test_the_frozen_sql_of_old_migrations_never_changes():
    import hashlib

    from service.migrations import frozen

    folder = Path(frozen.__file__).parent
    found = {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        for path in folder.glob("*.py")
    }
    assert found == FROZEN

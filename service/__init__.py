"""The lead-magnet service: a Flask app factory and the use cases behind it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from .content.sequence import SequenceError
from .core import logs
from .core.broker import prepare_folders
from .core.extensions import csrf, db, migrate
from .core.file_modes import private_folder, private_sqlite_file
from .core.liveness import install as install_liveness
from .core.nudges import install as install_nudges
from .core.settings import Settings, SettingsError
from .core.settings import install as install_settings
from .core.untrusted_json import JSONProvider
from .sending.context import current_content
from .web.proxies import TrustedProxyFix

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MAX_BODY = 16 * 1024


def create_app(
    env: Mapping[str, str] | None = None,
    settings: Settings | None = None,
    create_instance: bool = True,
    log_level: int = logging.INFO,
) -> Flask:
    """Build the app from the environment (or the given mapping); settings are read once.

    `create_instance=False` (CLI commands other than serve and db) uses the instance folder
    as it is, and raises settings.NoInstance where the embedded default finds none.
    `log_level`: the least level logged (the CLI's commands pass WARNING, see command_group)."""
    settings = settings or Settings.from_env(env, create_instance)
    logs.configure(settings.log_format, log_level)
    app = Flask(__name__, instance_path=str(settings.instance_path))
    install_settings(app, settings)
    try:
        current_content(app)  # read and checked now; later edits that break it are not used
    except SequenceError as exc:
        raise SettingsError("SEQUENCE_FILE", f"is invalid: {exc}") from None
    app.json = JSONProvider(app)
    if create_instance or settings.instance_path.is_dir():
        private_folder(settings.instance_path)
        private_sqlite_file(settings.database_url)
        prepare_folders(settings)
    app.config.update(_flask_config(settings))
    _init_extensions(app)
    from .web import register

    register(app)
    from .cli import register_commands

    register_commands(app)
    if settings.trusted_proxies:
        # The client's address and scheme as the proxies in front saw them: rate limits, the
        # consent ledger and request.is_secure all read these.
        app.wsgi_app = TrustedProxyFix(  # type: ignore[method-assign]  # Flask's own pattern
            app.wsgi_app, settings.trusted_proxies, settings.trusted_proxy_addresses
        )
    return app


def _flask_config(settings: Settings) -> dict:
    return {
        "SECRET_KEY": settings.secret_keys[0],
        "SECRET_KEY_FALLBACKS": list(settings.secret_keys[1:]),
        "SQLALCHEMY_DATABASE_URI": settings.database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(settings.database_url),
        # Any other Host (DNS rebinding, a forged X-Forwarded-Host) is a 400 before routing.
        "TRUSTED_HOSTS": list(settings.host_names),
        "MAX_CONTENT_LENGTH": MAX_BODY,
        "MAX_FORM_MEMORY_SIZE": MAX_BODY,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": settings.public_url.startswith("https://"),
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session cookie
        "RATELIMIT_ENABLED": settings.ratelimit_enabled,
    }


def _engine_options(url: str) -> dict:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30}}
    # No pool_pre_ping: core/liveness checks each checkout without a round trip.
    return {
        "pool_size": 5,
        "max_overflow": 5,
        "pool_timeout": 5,
        "connect_args": {"connect_timeout": 5},
    }


def _init_extensions(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS), render_as_batch=True)
    csrf.init_app(app)
    install_nudges()
    install_liveness()


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, connection_record: object) -> None:
    """WAL and a busy timeout let the web app, worker and beat share one SQLite file."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        # Let SQLAlchemy's "begin" event open transactions itself (see below).
        dbapi_connection.isolation_level = None


@event.listens_for(Engine, "begin")
def _sqlite_begin_immediate(connection: Connection) -> None:
    """Take SQLite's write lock up front: a read-then-write transaction that upgrades late
    fails at once with "database is locked" instead of waiting its turn. Not on an
    autocommit connection (core/autocommit.py): there each statement is its own."""
    autocommit = connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
    if connection.dialect.name == "sqlite" and not autocommit:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

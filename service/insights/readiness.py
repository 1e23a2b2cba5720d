"""What readiness asks beyond liveness: can mail leave, do the stored files answer, and is the
schema the code's."""

from __future__ import annotations

import contextlib
import logging
import os
import smtplib
import threading
from collections.abc import Callable
from datetime import timedelta

from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import inspect, text
from sqlalchemy.exc import SQLAlchemyError

from ..content.storage import storage_problem
from ..core.clock import utcnow
from ..core.extensions import db
from ..core.file_modes import PRIVATE_FOLDER
from ..core.settings import settings_of
from ..sending.transport import probe

log = logging.getLogger(__name__)
VERSION_TABLE = "alembic_version"
SMTP_TIMEOUT = 3  # seconds per step: a probe that hangs would hang the orchestrator's check
# /readyz is anonymous: however often it is asked, a process opens at most one SMTP session
# (or asks the file store once) in this long, and the others get the last answer.
MAIL_PROBE_TTL = timedelta(seconds=5)
_probing = threading.Lock()


def mail(app: Flask) -> str | None:
    """What is wrong with the way out for mail, or None; probed at most once per
    MAIL_PROBE_TTL per process, and logged when a probe finds a problem."""
    return _cached(app, "leadmagnet.mail_probe", _probe_mail)


def storage(app: Flask) -> str | None:
    """What keeps the file store (STORAGE_URL) from answering, or None; cached like mail."""
    return _cached(app, "leadmagnet.storage_probe", lambda app: storage_problem(settings_of(app)))


def _cached(app: Flask, name: str, probe: Callable[[Flask], str | None]) -> str | None:
    with _probing:  # the requests that arrive during a probe wait for its answer
        last = app.extensions.get(name)
        now = utcnow()
        if last is not None and abs(now - last[0]) < MAIL_PROBE_TTL:
            return last[1]
        problem = probe(app)
        if problem:
            log.warning("readiness: %s", problem)
        app.extensions[name] = (now, problem)
        return problem


def _probe_mail(app: Flask) -> str | None:
    """The SMTP server answers EHLO, or the outbox folder is writable; else what is wrong."""
    url = settings_of(app).email_url
    if url.path is not None:  # a file:// EMAIL_URL
        folder = url.path
        with contextlib.suppress(OSError):
            # As the file transport would make it: for the service's user alone.
            folder.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
        if not (folder.is_dir() and os.access(folder, os.W_OK)):
            return f"outbox folder not writable: {folder}"
        return None
    try:
        probe(url, SMTP_TIMEOUT)
    except (smtplib.SMTPException, OSError) as exc:
        return f"mail server {url.host}:{url.port} unreachable: {type(exc).__name__}"
    return None


def code_heads(app: Flask) -> frozenset[str]:
    """The heads of the migrations shipped with this code: read once per process."""
    heads = app.extensions.get("leadmagnet.migration_heads")
    if heads is None:
        script = ScriptDirectory(app.extensions["migrate"].directory)
        heads = frozenset(script.get_heads())
        app.extensions["leadmagnet.migration_heads"] = heads
    return heads


def migrations(app: Flask) -> str | None:
    """The database's alembic_version is the code's head; else which versions differ."""
    wanted = code_heads(app)
    try:
        with db.engine.connect() as conn:
            # Alembic's table read directly: MigrationContext would log two INFO lines at
            # every probe, every few seconds.
            current: frozenset[str] = frozenset()
            if inspect(conn).has_table(VERSION_TABLE):
                current = frozenset(conn.scalars(text(f"SELECT version_num FROM {VERSION_TABLE}")))
    except SQLAlchemyError as exc:
        return f"schema version unreadable: {type(exc).__name__}"
    if current != wanted:
        found = ", ".join(sorted(current)) or "none"
        return (
            f"database schema at {found}, code at {', '.join(sorted(wanted))}: "
            "run leadmagnet db upgrade"
        )
    return None

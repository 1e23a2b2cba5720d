"""The scheduler lock: of all the beats running on PostgreSQL, the one that holds this advisory
lock sends the scheduler passes; the others stand by and take it over when it goes.

The lock lives in a session of its own, so PostgreSQL itself says who holds it: a beat that is
killed, or stopped, closes its connection and the lock is free at once; one that hangs, or
whose machine vanishes, stops renewing its session and the server ends it after `timeout`
seconds (`idle_session_timeout`, PostgreSQL 14 and later). Passes stay safe side by side (see
dispatch.claim_due), so two beats that both believe they hold it for a moment send nothing twice.
"""

from __future__ import annotations

import logging
import os
import socket

import psycopg
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)
# Advisory locks are one key space per database, shared with any other program using it.
KEY = int.from_bytes(b"leadbeat")  # 0x6C65616462656174
IDLE_TIMEOUT_SINCE = 140000  # server_version that has idle_session_timeout


class SchedulerLock:
    """One beat's hold on the scheduler lock, over a PostgreSQL connection of its own."""

    def __init__(self, database_url: str, timeout: float) -> None:
        # libpq reads the URL itself; SQLAlchemy's driver name means nothing to it.
        url = make_url(database_url).set(drivername="postgresql")
        self.conninfo = url.render_as_string(hide_password=False)
        self.timeout = timeout
        # What pg_stat_activity shows for this session: which machine and process holds it.
        self.name = f"leadmagnet beat {os.getpid()} {socket.gethostname()}"[:63]
        self.conn: psycopg.Connection | None = None
        self.held = False
        self.failing = False

    def hold(self) -> bool:
        """Take the lock, or renew our session that holds it; False while another beat holds it
        or the database cannot be reached (the next call tries again)."""
        try:
            conn = self.conn or self._connect()
            if self.held:
                conn.execute("SELECT 1")  # the session stays alive, and the lock with it
            else:
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", (KEY,)).fetchone()
                self.held = bool(row and row[0])
                if self.held:
                    log.info("this beat holds the scheduler lock: it sends the passes now")
            self.failing = False
        except psycopg.Error as exc:
            self._lost(exc)
        return self.held

    def release(self) -> None:
        """Let another beat take over at once: ending the session frees the lock."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self.held = False

    def _connect(self) -> psycopg.Connection:
        self.conn = psycopg.connect(
            self.conninfo, autocommit=True, connect_timeout=5, application_name=self.name
        )
        if self.conn.info.server_version >= IDLE_TIMEOUT_SINCE:
            milliseconds = str(int(self.timeout * 1000))
            self.conn.execute(
                "SELECT set_config('idle_session_timeout', %s, false)", (milliseconds,)
            )
        return self.conn

    def _lost(self, exc: psycopg.Error) -> None:
        if self.held:
            log.warning("this beat lost the scheduler lock, standing by: %s", exc)
        elif not self.failing:
            log.warning("the scheduler lock cannot be reached, standing by: %s", exc)
        self.failing = True
        self.release()  # a connection that failed once is not trusted again

"""Pooled PostgreSQL connections: one whose session the server ended while it sat in the
pool is replaced on checkout (nobody sees the error); a live one is kept, unpinged."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from service.core.extensions import db
from tests.procs import wait_until

pytestmark = pytest.mark.postgres
BACKEND = text("SELECT pg_backend_pid()")


def backend() -> int:
    pid = db.session.scalar(BACKEND)
    db.session.commit()  # the connection goes back to the pool, idle
    return pid


def test_a_pooled_connection_the_server_ended_is_replaced_before_anyone_uses_it(
    pg_app, pg_database
):
    with pg_app.app_context():
        db.engine.dispose()
        ended = backend()
        url = make_url(pg_database).set(drivername="postgresql")
        with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (ended,))
            still = "SELECT count(*) FROM pg_stat_activity WHERE pid = %s"
            assert wait_until(lambda: not admin.execute(still, (ended,)).fetchone()[0], 10, 0.05)
        assert backend() != ended  # no OperationalError: a new session, before the statement


def test_a_live_pooled_connection_is_kept(pg_app):
    with pg_app.app_context():
        db.engine.dispose()
        first = backend()
        assert [backend() for _ in range(3)] == [first] * 3

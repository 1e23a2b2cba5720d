"""core/autocommit.py: each statement on its connection is committed by itself, so another
session sees it at once and nothing stays locked while the connection idles (both backends);
the driver's own connection (PostgreSQL) is of an autocommit pool of its own, and one that
cannot be had is an error the web answers 503 to."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from service.core.autocommit import autocommit_connection, autocommit_driver
from service.core.driver_sql import Sent, positional
from service.core.extensions import db
from service.core.models import Magnet
from service.sending.context import for_app
from tests.helpers import api_signup


def test_a_statement_is_committed_by_itself_and_holds_nothing(app):
    with app.app_context():
        magnet_id = for_app(app).magnet_id  # the default magnet, loaded
        db.session.commit()
        with autocommit_connection() as alone:
            alone.execute(update(Magnet).where(Magnet.id == magnet_id).values(title="Alone"))
            # Another session, while the connection is still open and idle: sees it, and
            # can write (SQLite's one write lock is not held by the idle connection).
            with app.app_context():
                assert db.session.scalar(select(Magnet.title).where(Magnet.id == magnet_id)) == (
                    "Alone"
                )
                db.session.execute(
                    update(Magnet).where(Magnet.id == magnet_id).values(title="After")
                )
                db.session.commit()


@pytest.mark.postgres
def test_the_drivers_connection_commits_each_statement_and_the_sessions_stay_transactional(
    pg_app,
):
    """autocommit_driver (the newcomer's statement): another session sees the statement while
    the block still holds the connection; that connection is of a pool of its own, still in
    autocommit the next time, and no session is ever handed a connection in autocommit."""
    with pg_app.app_context():
        magnet_id = for_app(pg_app).magnet_id
        db.session.commit()
        with autocommit_driver() as driver:
            driver.execute("UPDATE magnet SET title = 'Driven' WHERE id = %s", (magnet_id,))
            used = driver
            with pg_app.app_context():
                title = db.session.scalar(select(Magnet.title).where(Magnet.id == magnet_id))
                sessions = db.session.connection().connection.driver_connection
                db.session.rollback()
        with autocommit_driver() as again:
            assert again is used and again.autocommit  # pooled, and not switched back and forth
        assert title == "Driven"
        assert sessions is not used and sessions.autocommit is False


@pytest.mark.postgres
def test_a_connection_handed_back_in_a_transaction_is_dropped_not_pooled(pg_app):
    """The autocommit pool resets nothing on return: a connection left in a transaction
    (or mid-answer) is closed, and the next block gets one that is idle."""
    with pg_app.app_context():
        with autocommit_driver() as driver:
            driver.execute("BEGIN")
            left = driver
        with autocommit_driver() as again:
            assert again is not left and again.info.transaction_status == 0  # IDLE
        assert left.closed


@pytest.mark.postgres
def test_a_connection_refused_at_checkout_is_sqlalchemys_error_and_a_signup_answers_503(
    pg_app, pg_database
):
    """The pool hands on the driver's own error when it cannot connect; the web's error
    pages know SQLAlchemy's: a signup then answers 503 with its message, never a 500."""
    name = make_url(pg_database).database
    admin_url = make_url(pg_database).set(database="postgres").render_as_string(False)
    client = pg_app.test_client()
    assert api_signup(client, "first@example.com").status_code == 202  # content loaded
    with psycopg.connect(admin_url.replace("+psycopg", ""), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        try:
            with pg_app.app_context():
                db.engine.dispose()  # every new connection is refused now
                with pytest.raises(OperationalError), autocommit_driver():
                    pass
            answer = api_signup(client, "second@example.com")
        finally:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
    assert answer.status_code == 503
    assert "unavailable" in answer.get_json()["error"]


def backend_pid():
    return select(func.pg_backend_pid())


@pytest.mark.postgres
def test_a_connection_the_server_ends_in_the_block_is_dropped_and_its_error_is_sqlalchemys(
    pg_app, pg_database
):
    """The server ends the session while the block holds it: the statement's error is
    SQLAlchemy's (503, not 500), and the dead connection is not handed out again."""
    admin_url = make_url(pg_database).set(drivername="postgresql").render_as_string(False)
    with pg_app.app_context(), psycopg.connect(admin_url, autocommit=True) as admin:
        with pytest.raises(OperationalError), autocommit_driver() as driver:
            ended = driver.info.backend_pid
            admin.execute("SELECT pg_terminate_backend(%s)", (ended,))
            Sent(driver, positional(backend_pid), {}).first_row()  # as the newcomer's runs
        with autocommit_driver() as driver:
            assert Sent(driver, positional(backend_pid), {}).first_row() != (ended,)

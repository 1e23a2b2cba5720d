"""A statement sent ahead (driver_sql.Sent): its answer is read as run() would return it, its
errors come as SQLAlchemy's, and waiting for it lets the process's other threads run (a
worker's metrics thread, Celery's own)."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Float, Integer, bindparam, create_engine, func, select
from sqlalchemy.exc import DBAPIError

from service.core.driver_sql import Sent, positional

pytestmark = pytest.mark.postgres
WAIT = 0.4  # seconds the server sleeps before it answers


def sleeping():
    return select(func.pg_sleep(bindparam("seconds", type_=Float)), bindparam("n", type_=Integer))


def dividing():
    return select(bindparam("n", type_=Integer) / bindparam("zero", type_=Integer))


def send(conn, statement, params) -> Sent:
    """The statement sent on the SQLAlchemy connection's driver, as the worker sends it."""
    return Sent(conn.connection.driver_connection, statement, params)


@pytest.fixture
def conn(pg_database):
    engine = create_engine(pg_database)
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        yield connection
    engine.dispose()


class Spinner(threading.Thread):
    """Counts as fast as it can: how much it got done says whether it could run."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.count, self.halt = 0, False

    def run(self) -> None:
        while not self.halt:
            self.count += 1

    def during(self, work) -> int:
        before = self.count
        work()
        return self.count - before


def test_the_answer_is_read_as_sent_and_other_threads_run_while_it_is_awaited(conn):
    spinner = Spinner()
    spinner.start()
    try:
        idle = spinner.during(lambda: time.sleep(WAIT))
        sent = send(conn, positional(sleeping), {"seconds": WAIT, "n": 42})
        got: list[tuple] = []
        waiting = spinner.during(lambda: got.append(sent.first_row()))
    finally:
        spinner.halt = True
        spinner.join()
    assert got == [("", 42)]
    # Blocked inside libpq with the GIL held, the spinner got ~1/70 of what it does while
    # this thread sleeps; waiting in select() it gets about as much.
    assert waiting > idle / 10, (waiting, idle)


def test_a_refused_statement_raises_as_sqlalchemy_and_the_connection_goes_on(conn):
    sent = send(conn, positional(dividing), {"n": 1, "zero": 0})
    with pytest.raises(DBAPIError, match="division by zero"):
        sent.first_row()
    assert send(conn, positional(sleeping), {"seconds": 0, "n": 2}).first_row() == ("", 2)


def prepared(conn) -> list[str]:
    rows = conn.exec_driver_sql("SELECT name FROM pg_prepared_statements ORDER BY name")
    return [name for (name,) in rows if name.startswith("leadmagnet_")]


def test_a_statement_is_prepared_once_per_connection_and_again_once_the_session_drops_it(conn):
    """Parsed and planned once, not for every statement; a session that lost its prepared
    statements (psycopg sends DEALLOCATE ALL after a rollback in it) gets it prepared anew,
    and the statement that found it gone is answered, not refused."""
    assert send(conn, positional(sleeping), {"seconds": 0, "n": 1}).first_row() == ("", 1)
    [name] = prepared(conn)
    assert send(conn, positional(sleeping), {"seconds": 0, "n": 2}).first_row() == ("", 2)
    assert prepared(conn) == [name]  # the same one, run again
    conn.exec_driver_sql("DEALLOCATE ALL")
    assert send(conn, positional(sleeping), {"seconds": 0, "n": 3}).first_row() == ("", 3)
    [again] = prepared(conn)
    assert again != name

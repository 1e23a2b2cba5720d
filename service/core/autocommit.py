"""A connection of its own, outside the session, on which each statement is its own
transaction: for the one-statement writes that would pay BEGIN and COMMIT round trips."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from weakref import WeakKeyDictionary

import psycopg
from flask import current_app
from psycopg.pq import TransactionStatus
from sqlalchemy import Connection, Engine, create_engine, event

from .driver_sql import as_sqlalchemy
from .extensions import db


def autocommit_connection() -> Connection:
    """A connection checked out of the engine's pool, in autocommit: no transaction is held
    between statements. The caller closes it (`with autocommit_connection() as conn:`)."""
    return db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")


@contextmanager
def autocommit_driver() -> Iterator[psycopg.Connection]:
    """PostgreSQL's own connection, from a pool of connections that stay in autocommit: one
    statement on the signup's hot path without SQLAlchemy's Connection around it, and with
    no isolation switched on checkout or transaction rolled back on return (the shared
    pool's switch both ways was about a sixth of the statement's client CPU). A connection that
    cannot be had is SQLAlchemy's error, the one the web answers 503 to."""
    try:
        pooled = _autocommit_engine().raw_connection()
        driver: psycopg.Connection = pooled.driver_connection  # type: ignore[assignment]
    except psycopg.Error as exc:  # the pool hands on the driver's refusal as it came
        raise as_sqlalchemy(exc) from exc
    try:
        yield driver
    finally:
        # No reset runs on return: a connection in any state but idle (ended by the server,
        # a transaction left open, an answer left unread) is never handed out again.
        if driver.info.transaction_status != TransactionStatus.IDLE:
            pooled.invalidate()
        pooled.close()


_TWINS: WeakKeyDictionary[Engine, Engine] = WeakKeyDictionary()
_MAKING = threading.Lock()


def _autocommit_engine() -> Engine:
    """The app engine's twin: the same database and pool settings, in autocommit, with a
    pool of its own (made once per engine, and disposed with it)."""
    engine = db.engine
    twin = _TWINS.get(engine)
    if twin is None:
        with _MAKING:
            twin = _TWINS.get(engine)
            if twin is None:
                twin = _TWINS[engine] = _make_twin(engine)
    return twin


def _make_twin(engine: Engine) -> Engine:
    options = {
        **current_app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}),
        "isolation_level": "AUTOCOMMIT",
        "pool_reset_on_return": None,  # no transaction to end: autocommit holds none
    }
    twin = create_engine(engine.url, **options)
    # A disposed engine's connections are closed (a test's teardown, a refused server): so
    # are its twin's, or a dropped database would keep sessions open.
    event.listen(engine, "engine_disposed", lambda _engine: twin.dispose())
    return twin

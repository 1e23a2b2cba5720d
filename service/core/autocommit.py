"""A connection of its own, outside the session, on which each statement is its own
transaction: for the one-statement writes that would pay BEGIN and COMMIT round trips."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy import Connection

from .driver_sql import as_sqlalchemy
from .extensions import db


def autocommit_connection() -> Connection:
    """A connection checked out of the engine's pool, in autocommit: no transaction is held
    between statements. The caller closes it (`with autocommit_connection() as conn:`)."""
    return db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")


@contextmanager
def autocommit_driver() -> Iterator[psycopg.Connection]:
    """PostgreSQL's own connection, checked out of the same pool and in autocommit while the
    block runs: one statement on the signup's hot path without SQLAlchemy's Connection
    around it (making it and switching its isolation both ways were a tenth of the client's
    CPU for that statement). It goes back transactional, as the pool's other users expect.
    A connection that cannot be had is SQLAlchemy's error, the one the web answers 503 to."""
    try:
        pooled = db.engine.raw_connection()
        driver: psycopg.Connection = pooled.driver_connection  # type: ignore[assignment]
    except psycopg.Error as exc:  # the pool hands on the driver's refusal as it came
        raise as_sqlalchemy(exc) from exc
    try:
        driver.autocommit = True
        yield driver
    finally:
        try:
            if driver.closed or driver.broken:
                pooled.invalidate()  # the server ended it: never handed out again
            else:
                driver.autocommit = False
        finally:
            pooled.close()  # back to the pool whatever happened above

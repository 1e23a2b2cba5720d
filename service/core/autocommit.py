"""A connection of its own, outside the session, on which each statement is its own
transaction: for the one-statement writes that would pay BEGIN and COMMIT round trips."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy import Connection

from .extensions import db


def autocommit_connection() -> Connection:
    """A connection checked out of the engine's pool, in autocommit: no transaction is held
    between statements. The caller closes it (`with autocommit_connection() as conn:`)."""
    return db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")


@contextmanager
def autocommit_driver() -> Iterator[psycopg.Connection]:
    """The driver's own connection (PostgreSQL), checked out of the same pool, in autocommit
    for as long as the block runs: for one statement on a hot path, without the SQLAlchemy
    Connection around it (its making and its isolation switch were 4% of a signup's CPU)."""
    pooled = db.engine.raw_connection()
    try:
        driver: psycopg.Connection = pooled.driver_connection  # type: ignore[assignment]
        driver.autocommit = True
        yield driver
    finally:
        try:
            if not driver.closed:
                driver.autocommit = False  # as the pool's other users expect it
        finally:
            pooled.close()  # back to the pool (or discarded, when the server ended it)

"""A connection of its own, outside the session, on which each statement is its own
transaction: for the one-statement writes that would pay BEGIN and COMMIT round trips."""

from __future__ import annotations

from sqlalchemy import Connection

from .extensions import db


def autocommit_connection() -> Connection:
    """A connection checked out of the engine's pool, in autocommit: no transaction is held
    between statements. The caller closes it (`with autocommit_connection() as conn:`)."""
    return db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")

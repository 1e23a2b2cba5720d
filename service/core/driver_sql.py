"""Statements sent to PostgreSQL's driver as compiled once, for the hot paths (the record of
a send, a newcomer's signup) where SQLAlchemy's work per execution (the statement's cache
key, each value bound through its column type) cost more client CPU than the round trip."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any, overload

import psycopg
from sqlalchemy import Connection, Table, literal_column
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError, OperationalError


@cache
def compiled(build: Callable[[], Any]) -> str:
    """The SQL of the statement `build` makes, compiled once per process (values are
    parameters; building the statement costs more than its round trip)."""
    return str(build().compile(dialect=postgresql.psycopg.dialect()))


def run(conn: Connection, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
    """The statement's first row, on the connection's driver; its errors as SQLAlchemy's,
    which the callers' retries and the web's error pages know."""
    try:
        return conn.connection.driver_connection.execute(sql, params).fetchone()  # type: ignore[union-attr]
    except psycopg.IntegrityError as exc:
        raise IntegrityError(sql, params, exc) from exc
    except psycopg.OperationalError as exc:
        raise OperationalError(sql, params, exc) from exc


def constant(table: Table, column: str, value: str | int) -> Any:
    """A constant written into the SQL, typed as its column: a parameter less to send."""
    text = f"'{value}'" if isinstance(value, str) else str(value).lower()  # True -> true
    return literal_column(text, table.c[column].type)


@overload
def utc(value: datetime) -> datetime: ...
@overload
def utc(value: None) -> None: ...
def utc(value: datetime | None) -> datetime | None:
    """As models.UTCDateTime binds and reads a value: aware, in UTC; a naive one is a bug."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC)

"""Statements sent to PostgreSQL's driver as compiled once, for the hot paths (the record of
a send, a newcomer's signup) where SQLAlchemy's work per execution (the statement's cache
key, each value bound through its column type) cost more client CPU than the round trip."""

from __future__ import annotations

import hashlib
import itertools
import select
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, overload
from weakref import WeakKeyDictionary

import psycopg
from psycopg import pq
from psycopg.adapt import PyFormat, Transformer
from sqlalchemy import Connection, Table, literal_column
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError


@cache
def compiled(build: Callable[[], Any]) -> str:
    """The SQL of the statement `build` makes, compiled once per process (values are
    parameters; building the statement costs more than its round trip)."""
    return str(build().compile(dialect=postgresql.psycopg.dialect()))


def run(conn: Connection, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
    """The statement's first row, on the connection's driver; its errors as SQLAlchemy's,
    which the callers' retries and the web's error pages know."""
    driver: psycopg.Connection = conn.connection.driver_connection  # type: ignore[assignment]
    try:
        return driver.execute(sql, params).fetchone()
    except (psycopg.IntegrityError, psycopg.OperationalError) as exc:
        raise as_sqlalchemy(exc, sql, params) from exc


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


@dataclass(frozen=True)
class Positional:
    """A statement's SQL with $1.. placeholders, the names of its values in that order, and
    the name it is prepared under on each connection that runs it."""

    sql: bytes
    names: tuple[str, ...]
    name: bytes


@cache
def positional(build: Callable[[], Any]) -> Positional:
    """The statement `build` makes, compiled once per process for libpq's own parameters."""
    dialect = postgresql.psycopg.dialect(paramstyle="numeric_dollar")
    done = build().compile(dialect=dialect)
    sql = str(done).encode()
    # Named for its text: one name, one SQL, in every process (psycopg's own are _pg3_N).
    name = b"leadmagnet_" + hashlib.sha256(sql).hexdigest()[:16].encode()
    return Positional(sql, tuple(done.positiontup or ()), name)


# The statements prepared on each driver connection, by statement and types: a connection's
# session keeps them until it ends, and the connection object goes with it.
_NAMES = itertools.count()  # never the same name twice in a process, whatever was dropped
_PREPARED: WeakKeyDictionary[psycopg.Connection, dict[tuple[bytes, tuple[int, ...]], bytes]] = (
    WeakKeyDictionary()
)


class Sent:
    """A statement sent and its answer not yet read: the server runs it (and, on an
    autocommit connection, commits it) while the caller does other work; first_row() reads
    the answer. Nothing else may use the connection in between."""

    def __init__(
        self, driver: psycopg.Connection, statement: Positional, params: dict[str, Any]
    ) -> None:
        self.driver = driver
        self.adapt = Transformer(self.driver)
        values = [params[name] for name in statement.names]
        self.dumped = self.adapt.dump_sequence(values, [PyFormat.AUTO] * len(values))
        self.statement, self.sql, self.params = statement, statement.sql, params
        self._send()

    def _send(self) -> None:
        try:
            name = self._prepared(self.statement)
            self.driver.pgconn.send_query_prepared(name, self.dumped, self.adapt.formats)
            _flush(self.driver.pgconn)
        except psycopg.Error as exc:
            raise as_sqlalchemy(exc, self.sql, self.params) from exc

    def _prepared(self, statement: Positional) -> bytes:
        """The statement's name on this connection for these values' types, prepared once:
        parsed and planned once per connection, not for every statement (that was ~0.4 of
        the record's ~0.9 ms on the server, bench.delivery with log_min_duration_statement).
        A value's type can change (a None, an int past int2), and a prepared statement's
        types are fixed: each set of types is a statement of its own, as psycopg does."""
        types = tuple(self.adapt.types or ())
        known = _PREPARED.setdefault(self.driver, {})
        name = known.get((statement.name, types))
        if name is None:
            name = b"%s_%d" % (statement.name, next(_NAMES))
            self.driver.pgconn.send_prepare(name, statement.sql, types)
            _flush(self.driver.pgconn)
            self._result(pq.ExecStatus.COMMAND_OK)
            known[statement.name, types] = name
        return name

    def first_row(self) -> tuple[Any, ...] | None:
        """The answer's first row (waits for it); its errors as SQLAlchemy's, as run()'s."""
        try:
            result = self._result(pq.ExecStatus.TUPLES_OK)
        except DBAPIError as exc:
            if not isinstance(exc.orig, psycopg.errors.InvalidSqlStatementName):
                raise
            # The session lost it: psycopg deallocates all of a session's prepared
            # statements after a rollback in it (DEALLOCATE ALL), ours with its own. It
            # failed to bind, so it did not run: prepared and sent again. (Rare on a worker's
            # batch connection: never in bench.delivery's runs. Never on the autocommit
            # pool's, where no transaction is ever rolled back. A connection that sessions
            # share would meet it often, and log an error each time.)
            _PREPARED.pop(self.driver, None)
            self._send()
            result = self._result(pq.ExecStatus.TUPLES_OK)
        self.adapt.set_pgresult(result)
        return self.adapt.load_row(0, tuple) if result.ntuples else None

    def _result(self, ok: pq.ExecStatus) -> pq.abc.PGresult:
        pgconn, results = self.driver.pgconn, []
        try:
            while True:
                pgconn.consume_input()
                while pgconn.is_busy():  # waits in select(), not in libpq: the GIL is let go
                    select.select([pgconn.socket], [], [])
                    pgconn.consume_input()
                if (result := pgconn.get_result()) is None:
                    break
                results.append(result)
        except psycopg.Error as exc:
            raise as_sqlalchemy(exc, self.sql, self.params) from exc
        failed = next((r for r in results if r.status != ok), None)
        if failed is not None or not results:
            error = (
                psycopg.errors.error_from_result(failed, encoding=self.driver.info.encoding)
                if failed is not None
                else psycopg.OperationalError("the connection gave no answer")
            )
            raise as_sqlalchemy(error, self.sql, self.params) from error
        return results[0]


def _flush(pgconn: pq.abc.PGconn) -> None:
    # psycopg's connections are non-blocking: what the socket did not take yet is sent now,
    # so the server has the whole message before this returns.
    while pgconn.flush():
        select.select([], [pgconn.socket], [])


def as_sqlalchemy(
    exc: psycopg.Error, sql: bytes | str | None = None, params: dict[str, Any] | None = None
) -> Exception:
    """The driver's error as SQLAlchemy raises it (IntegrityError, OperationalError, ...):
    the one the callers' retries and the web's 503 page know."""
    text = sql.decode() if isinstance(sql, bytes) else sql
    return DBAPIError.instance(text, params, exc, psycopg.Error)

"""A pooled PostgreSQL connection is checked on checkout without a round trip: a server that
ended the session (terminated, restarted, shut down) has said so on the socket."""

from __future__ import annotations

import select
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.pool import Pool

FRESH = "liveness_fresh"


def _spoke(dbapi_connection: Any) -> bool:
    """Whether the server sent anything to this idle connection: an idle session is sent
    nothing, but a session the server ends gets an error message, then the socket closes."""
    poller = select.poll()
    poller.register(dbapi_connection.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def _made(dbapi_connection: Any, record: Any) -> None:
    record.info[FRESH] = True


def _check(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Instead of pool_pre_ping's SELECT per checkout (a third of a signup's time, profiled):
    a connection the server spoke to while idle is replaced before anyone uses it (the pool
    reconnects on DisconnectionError). A harmless message (a notice) costs one reconnect.
    A connection just made is not checked, as pre_ping did not ping one: the pool tries
    twice, and a second refusal would be an error other than the database's (a 500)."""
    if record.info.pop(FRESH, False) or not hasattr(dbapi_connection, "pgconn"):
        return  # new, or not psycopg's (SQLite)
    if dbapi_connection.closed or dbapi_connection.broken or _spoke(dbapi_connection):
        raise exc.DisconnectionError("the server ended this pooled session")


def install() -> None:
    """Once per process, for every pool (the web app's, the worker's, the CLI's)."""
    for name, listener in (("connect", _made), ("checkout", _check)):
        if not event.contains(Pool, name, listener):
            event.listen(Pool, name, listener)

"""The record of an accepted send on PostgreSQL: one statement, its own transaction."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

import psycopg
from sqlalchemy import (
    Connection,
    Table,
    bindparam,
    func,
    literal_column,
    null,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert

from ..content.sequence import Sequence, Step
from ..core.autocommit import autocommit_connection
from ..core.driver_sql import Sent, compiled, constant, positional, run, utc
from ..core.models import DeliveryAttempt, EmailStatus, Outcome, Purpose, ScheduledEmail
from .message import new_message_id

EMAIL: Table = ScheduledEmail.__table__  # type: ignore[assignment]
ATTEMPT: Table = DeliveryAttempt.__table__  # type: ignore[assignment]
REVIVE = "revive"  # the next step has a row already (cancelled, say): the session's path
Read = tuple[str, datetime | None]  # a row's status and lease, read just before its send


def link() -> Connection:
    """A connection of the batch's own on which each statement is its own transaction: no
    BEGIN or COMMIT round trips, no pool check-out (and its ping) per email. Idle between
    statements, it holds no transaction across an SMTP send."""
    return autocommit_connection()


def read(conn: Connection, email_id: int) -> Read | None:
    """A row's status and lease, in one round trip."""
    row = run(conn, compiled(_read_statement), {"email_id": email_id})
    return (row[0], utc(row[1])) if row else None


def next_step(sequence: Sequence, after: str, states: dict[str, str] | None) -> Step | str | None:
    """The drip step that follows `after` once it is sent, from the person's drip rows as
    the batch's check read them (`states`); REVIVE when that step has a row already."""
    if states is None:
        return REVIVE  # not read at the check: the session's path reads them itself
    sent = {step for step, status in states.items() if status == EmailStatus.SENT}
    step = sequence.after(after, sent | {after})
    if step is None:
        return None
    return REVIVE if step.id in states else step


def following(
    magnet_id: int | None, step: Step | None, due: datetime | None, sender: str
) -> dict[str, Any]:
    """The next step's parameters of the record statement (step None: nothing follows)."""
    if step is None:
        return {"next_step": None, "next_due": None, "next_message_id": None, "magnet": None}
    return {
        "next_step": step.id,
        "next_due": due,
        "next_message_id": new_message_id(sender),
        "magnet": magnet_id,
    }


def record(conn: Connection, values: dict[str, Any], peek: int | None) -> tuple[bool, Read | None]:
    """The row marked sent, the attempt logged and the next step inserted (when the row was
    not sent already: else an earlier try's commit landed and only its answer was lost),
    and the batch's next row `peek` re-read; whether this call recorded it, and that read.

    One statement on an autocommit connection is one transaction: one round trip. Its
    commit does not wait for the disk (set_config(..., true) lasts until the end of the
    statement's own transaction, so its commit runs with it): a durable commit costs more
    here than the whole rest of a send. A worker crash loses nothing (the server has the
    commit); a database crash can lose the last sent-records (3 x wal_writer_delay), whose
    rows go again: the after-accept window of the README's Reliability section. The claim
    before the send stays durable. The next step's insert does nothing if that step's row
    appeared since the batch's check (the drip's unique index)."""
    return _answer(run(conn, compiled(_statement), _params(values, peek)))


def send(conn: Connection, values: dict[str, Any], peek: int | None) -> Sent:
    """record()'s statement sent and not waited for: PostgreSQL runs and commits it while
    the worker renders the next row; answer() reads what record() returns. Until then the
    connection is the statement's alone."""
    driver: psycopg.Connection = conn.connection.driver_connection  # type: ignore[assignment]
    return Sent(driver, positional(_statement), _params(values, peek))


def answer(sent: Sent) -> tuple[bool, Read | None]:
    """What record() returns, for a statement sent with send()."""
    return _answer(sent.first_row())


def _params(values: dict[str, Any], peek: int | None) -> dict[str, Any]:
    return {**values, "peek": peek, "now": utc(values["now"]), "next_due": utc(values["next_due"])}


def _answer(row: tuple[Any, ...] | None) -> tuple[bool, Read | None]:
    assert row is not None  # a SELECT without FROM: always one row
    fresh = (row[1], utc(row[2])) if row[1] is not None else None
    return row[0] is not None, fresh


def _param(table: Table, column: str, name: str) -> Any:
    # Bound with the column's type: UTC datetimes are checked as on the ORM path. No name is
    # a column's: an UPDATE would add a parameter named as its table's column to its SET.
    return bindparam(name, type_=table.c[column].type)


@cache
def _read_statement() -> Any:
    return select(EMAIL.c.status, EMAIL.c.lease_until).where(EMAIL.c.id == bindparam("email_id"))


@cache
def _statement() -> Any:
    """Built once per process (values are parameters): building it costs more than its
    round trip."""
    now = _param(EMAIL, "sent_at", "now")
    sent = (
        update(EMAIL)
        .where(
            EMAIL.c.id == bindparam("row_id"),
            EMAIL.c.status != constant(EMAIL, "status", EmailStatus.SENT),
        )
        .values(
            status=constant(EMAIL, "status", EmailStatus.SENT),
            sent_at=now,
            lease_until=null(),
            last_error=null(),
        )
        .returning(EMAIL.c.id, EMAIL.c.subscriber_id)
        .cte("sent")
    )
    attempt = {
        "email_id": sent.c.id,
        "message_id": _param(ATTEMPT, "message_id", "its_message_id"),
        "outcome": constant(ATTEMPT, "outcome", Outcome.SENT),
        "smtp_code": _param(ATTEMPT, "smtp_code", "code"),
        "smtp_reply": _param(ATTEMPT, "smtp_reply", "reply"),
        "created_at": _param(ATTEMPT, "created_at", "now"),
    }
    logged = (
        insert(ATTEMPT)
        .from_select(list(attempt), select(*attempt.values()))
        .returning(ATTEMPT.c.email_id)
        .cte("logged")
    )
    step = _param(EMAIL, "step_id", "next_step")
    nxt = {
        "subscriber_id": sent.c.subscriber_id,
        "magnet_id": _param(EMAIL, "magnet_id", "magnet"),
        "step_id": step,
        "purpose": constant(EMAIL, "purpose", Purpose.DRIP),
        "status": constant(EMAIL, "status", EmailStatus.PENDING),
        "anchor_at": _param(EMAIL, "anchor_at", "now"),
        "due_at": _param(EMAIL, "due_at", "next_due"),
        "attempts": constant(EMAIL, "attempts", 0),
        "message_id": _param(EMAIL, "message_id", "next_message_id"),
        "created_at": _param(EMAIL, "created_at", "now"),
    }
    scheduled = (
        insert(EMAIL)
        .from_select(list(nxt), select(*nxt.values()).where(step.is_not(None)))
        .on_conflict_do_nothing(
            index_elements=["subscriber_id", "magnet_id", "step_id"],
            index_where=text("purpose = 'drip'"),
        )
        .cte("scheduled")
    )
    peek = EMAIL.alias("peek")
    of_peek = peek.c.id == bindparam("peek")
    return select(
        select(logged.c.email_id).scalar_subquery(),
        select(peek.c.status).where(of_peek).scalar_subquery(),
        select(peek.c.lease_until).where(of_peek).scalar_subquery(),
        func.set_config(literal_column("'synchronous_commit'"), literal_column("'off'"), true()),
    ).add_cte(scheduled)

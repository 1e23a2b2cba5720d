"""The fast path of a signup by a stranger to the list: one statement, committed as it runs,
writes subscriber, consent entry, enrolment, first email and the dashboard's figure rows
(PostgreSQL), or writes nothing and says so."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Integer,
    String,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    column,
    exists,
    func,
    literal_column,
    select,
    true,
    values,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert

from ..core.addresses import email_key, mailbox_key
from ..core.autocommit import autocommit_driver
from ..core.driver_sql import Sent, constant, positional, utc
from ..core.extensions import db
from ..core.models import (
    COUNTED_PERSON,
    COUNTED_TAKER,
    ConsentAction,
    ConsentRecord,
    EmailStatus,
    Enrolment,
    FigureDelta,
    Purpose,
    ScheduledEmail,
    Subscriber,
    SubscriberStatus,
    Suppression,
)
from ..core.tokens import new_token_key
from ..people.consent import RequestMeta
from ..sending.context import Context
from ..sending.message import new_message_id
from ..sending.suppression import address_hashes
from .validation import SignupInput

SUBSCRIBER: Table = Subscriber.__table__  # type: ignore[assignment]
CONSENT: Table = ConsentRecord.__table__  # type: ignore[assignment]
ENROLMENT: Table = Enrolment.__table__  # type: ignore[assignment]
EMAIL: Table = ScheduledEmail.__table__  # type: ignore[assignment]
SUPPRESSION: Table = Suppression.__table__  # type: ignore[assignment]
FIGURES: Table = FigureDelta.__table__  # type: ignore[assignment]
HASHES = ARRAY(String)  # one parameter however many SECRET_KEYs: one SQL text, prepared once


def applies(ctx: Context) -> bool:
    """Only where the statement is written for, and only when a newcomer starts at once."""
    return (
        ctx.magnet_id is not None
        and not ctx.settings.double_opt_in
        and db.engine.dialect.name == "postgresql"  # not the session: none is made
    )


def insert_newcomer(
    ctx: Context, data: SignupInput, meta: RequestMeta, now: datetime
) -> tuple[int, int] | None:
    """(subscriber id, first email id), written and committed in one round trip; None when
    anyone shares the mailbox (this address or another spelling of it) or the address is
    suppressed: those take the full path, which knows every rule about people seen before.
    The statement runs on an autocommit connection of its own: one statement is one
    transaction (consent and first email stand or fall together), and the session's BEGIN
    and COMMIT would be two more round trips."""
    values = _values(ctx, data, meta, now)
    with autocommit_driver() as alone:
        # Prepared once per connection under a name of ours: psycopg's cursor around it
        # cost ~35 us a statement more, a fifth of its client CPU. Sessions never use these
        # connections, so no rollback ever drops the prepared statement.
        row = Sent(alone, positional(_statement), values).first_row()
    return (row[0], row[1]) if row is not None else None


def _values(ctx: Context, data: SignupInput, meta: RequestMeta, now: datetime) -> dict[str, Any]:
    """The statement's parameters as the driver takes them (no column type binds them: times
    in UTC, statuses as their text)."""
    shown, step = ctx.content.consent, ctx.content.first
    zone = ZoneInfo(data.time_zone) if data.time_zone else ctx.content.default_zone
    now = utc(now)
    return {
        "email": data.email,
        "email_key": email_key(data.email),
        "mailbox_key": mailbox_key(data.email),
        "first_name": data.first_name,
        "time_zone": data.time_zone,
        "now": now,
        "day": now.strftime("%Y-%m-%d"),  # the figures' UTC day (rollup_sql's "day")
        "token_key": new_token_key(),
        "hashes": address_hashes(ctx, data.email),
        "magnet_id": ctx.magnet_id,
        "text": shown.text,
        "text_version": shown.version,
        "text_sha256": shown.sha256,
        "source": meta.source,
        "page_url": meta.page_url,
        "ip": meta.ip,
        "user_agent": (meta.user_agent or "")[:512] or None,
        "step_id": step.id,
        "due_at": utc(step.due_after(now, zone)),
        "message_id": new_message_id(ctx.sender),
    }


def _constant(table: Table, column: str, value: str | int) -> Any:
    # Written into the SQL: a parameter less to send and convert on every signup.
    return constant(table, column, value).label(column)


def _param(table: Table, column: str, name: str | None = None) -> Any:
    # Bound with the column's type: UTC datetimes are checked as on the ORM path.
    return bindparam(name or column, type_=table.c[column].type).label(column)


@cache
def _statement() -> Any:
    """The statement (values are parameters): one INSERT ... SELECT per table, chained."""
    person = [
        _param(SUBSCRIBER, name)
        for name in ("email", "email_key", "mailbox_key", "first_name", "time_zone")
    ] + [
        _constant(SUBSCRIBER, "status", SubscriberStatus.ACTIVE),
        _param(SUBSCRIBER, "created_at", "now"),
        _param(SUBSCRIBER, "updated_at", "now"),
        _param(SUBSCRIBER, "token_key"),
        _constant(SUBSCRIBER, "guide_downloads", 0),
        _constant(SUBSCRIBER, "legacy_tokens", False),
    ]
    stranger = (
        select(*person)
        .where(~exists().where(SUBSCRIBER.c.mailbox_key == bindparam("mailbox_key")))
        .where(~exists().where(SUPPRESSION.c.email_hash == any_(bindparam("hashes", type_=HASHES))))
        .where(_counted(COUNTED_PERSON, bindparam("email_key")))
    )
    added = (
        insert(SUBSCRIBER)
        .from_select([c.name for c in person], stranger)
        .on_conflict_do_nothing(index_elements=[SUBSCRIBER.c.email_key])
        .returning(SUBSCRIBER.c.id)
        .cte("added")
    )
    consent = _consent(added)
    first = _first_email(added)
    return select(first.c.subscriber_id, first.c.id).add_cte(_enrolment(consent), _figures(added))


def _counted(setting: str, row: Any) -> Any:
    """True, having named the row about to be inserted as counted by this statement, for its
    transaction: the figures' insert trigger skips it (models.COUNTED_PERSON)."""
    local: Any = literal_column("true")  # the setting ends with the transaction
    return func.set_config(literal_column(f"'{setting}'"), row, local).is_not(None)


def _consent(added: Any) -> Any:
    names = ("magnet_id", "text", "text_version", "text_sha256", "source", "page_url", "ip")
    values = [_param(CONSENT, name) for name in (*names, "user_agent")]
    values += [
        _constant(CONSENT, "action", ConsentAction.CONSENT),
        _param(CONSENT, "created_at", "now"),
    ]
    return (
        insert(CONSENT)
        .from_select(["subscriber_id", *(c.name for c in values)], select(added.c.id, *values))
        .returning(CONSENT.c.id, CONSENT.c.subscriber_id)
        .cte("consented")
    )


def _enrolment(consent: Any) -> Any:
    values = [_param(ENROLMENT, "magnet_id"), _param(ENROLMENT, "taken_at", "now")]
    chosen = select(consent.c.subscriber_id, consent.c.id, *values).where(
        _counted(COUNTED_TAKER, cast(consent.c.subscriber_id, Text))
    )
    return (
        insert(ENROLMENT)
        .from_select(["subscriber_id", "consent_id", *(c.name for c in values)], chosen)
        .cte("enrolled")
    )


def _first_email(added: Any) -> Any:
    values = [
        _param(EMAIL, "magnet_id"),
        _param(EMAIL, "step_id"),
        _constant(EMAIL, "purpose", Purpose.DRIP),
        _constant(EMAIL, "status", EmailStatus.PENDING),
        _param(EMAIL, "anchor_at", "now"),
        _param(EMAIL, "due_at"),
        _constant(EMAIL, "attempts", 0),
        _param(EMAIL, "message_id"),
        _param(EMAIL, "created_at", "now"),
    ]
    return (
        insert(EMAIL)
        .from_select(["subscriber_id", *(c.name for c in values)], select(added.c.id, *values))
        .returning(EMAIL.c.id, EMAIL.c.subscriber_id)
        .cte("first_email")
    )


def _figures(added: Any) -> Any:
    """What the two insert triggers would append for this person: everyone's (0) and the
    magnet's signups of the day and people signed up (nobody is confirmed, has downloaded
    or has stopped at signup)."""
    day, magnet = bindparam("day", type_=String), bindparam("magnet_id", type_=Integer)
    everyone = constant(FIGURES, "magnet_id", 0)
    signups, people = constant(FIGURES, "name", "signups"), constant(FIGURES, "name", "people")
    signed_up = constant(FIGURES, "part", "signed_up")
    rows = values(
        column("magnet_id", Integer), column("name", String), column("part", String), name="v"
    ).data(
        [
            (everyone, signups, day),
            (everyone, people, signed_up),
            (magnet, signups, day),
            (magnet, people, signed_up),
        ]
    )
    chosen = select(rows.c.magnet_id, rows.c.name, rows.c.part, literal_column("1")).select_from(
        added.join(rows, true())
    )
    return insert(FIGURES).from_select(["magnet_id", "name", "part", "n"], chosen).cte("counted")

"""The SQL that keeps the click and broadcast figures (migration 0017), beside rollup_sql.py's
dashboard figures and in the same figure_delta / figure_total rows:

- c_anyone|c_people/<step>: people with any hit | with a hit nothing marks automated;
  c_<reason>/<step>: automated hits by reason (head, prefetch, burst);
  c_link/<step>|<url>: people with a human hit on that link. Each twice: under magnet 0
  (every click of the step) and under the click's target, its magnet or -broadcast id.
- b_sent|b_failed|b_cancelled/'': a broadcast's rows by outcome, under -broadcast id;
  b_minute/<UTC minute>: its sends by the minute they left (its rate; an hour is kept);
  b_unsub|b_complained/'': its recipients in that state now, who got
  there after it reached them (unsubscribed_at, or updated_at for a complaint, >= sent_at).

People are counted once per target at insert time: a hit adds a person when no other hit
of theirs matches (BEFORE triggers see the rows an earlier row of the same statement
changed, never their own), a delete or a re-marking takes them off when it was the last.
The triggers sit on the click table and on broadcast rows only: a drip email's send
evaluates one WHEN clause of theirs and nothing else.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from . import trigger_ddl
from .trigger_ddl import INSERT, Guarded, Trigger

LINK_CHARS = 1000  # a link's figure keeps this much of its URL (figure part: String(1100))
TARGET = "COALESCE({0}.magnet_id, -{0}.broadcast_id)"
OUTCOMES = "('sent', 'failed', 'cancelled')"
# A broadcast's sends per UTC minute, for its rate; the fold drops minutes over an hour old.
MINUTE = {
    "postgresql": "to_char({0} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI')",
    "sqlite": "strftime('%Y-%m-%dT%H:%M', {0})",
}
DIFFER = {"postgresql": "{0} IS DISTINCT FROM {1}", "sqlite": "{0} IS NOT {1}"}
# A recipient is in that state now, and got there after the broadcast reached them.
AFTER = (
    "(s.status = 'unsubscribed' AND s.unsubscribed_at >= {e}.sent_at) AS unsub, "
    "(s.status = 'complained' AND s.updated_at >= {e}.sent_at) AS complained"
)


def _click(row: str, sign: int, keyed: bool) -> str:
    """What a hit adds (sign 1) or takes back (-1), measured against the person's other hits
    of the same step and target: everyone's (magnet 0), or its magnet's or broadcast's."""
    target = TARGET.format(row)
    magnet = target if keyed else "0"
    same = f"AND {TARGET.format('c')} = {target} " if keyed else ""
    only = f" AND {target} IS NOT NULL" if keyed else ""

    def none_other(also: str) -> str:
        return (
            f"NOT EXISTS (SELECT 1 FROM click c WHERE c.step_id = {row}.step_id "
            f"AND c.subscriber_id = {row}.subscriber_id AND c.id <> {row}.id {same}{also})"
        )

    human = f"{row}.automated IS NULL"
    link = f"substr({row}.url, 1, {LINK_CHARS})"
    return (
        INSERT + f"SELECT {magnet}, 'c_anyone', {row}.step_id, {sign} "
        f"WHERE {none_other('')}{only} "
        f"UNION ALL SELECT {magnet}, 'c_people', {row}.step_id, {sign} "
        f"WHERE {human} AND {none_other('AND c.automated IS NULL')}{only} "
        f"UNION ALL SELECT {magnet}, 'c_link', {row}.step_id || '|' || {link}, {sign} "
        f"WHERE {human} AND "
        f"{none_other(f'AND c.automated IS NULL AND substr(c.url, 1, {LINK_CHARS}) = {link}')}"
        f"{only} "
        f"UNION ALL SELECT {magnet}, 'c_' || {row}.automated, {row}.step_id, {sign} "
        f"WHERE {row}.automated IS NOT NULL{only}"
    )


def _clicks(row: str, sign: int) -> list[str | Guarded]:
    return [_click(row, sign, False), _click(row, sign, True)]


def _outcome(d: str, row: str, sign: int) -> Guarded:
    """A broadcast row counts by its outcome; a sent one also under the minute it left."""
    minute = MINUTE[d].format(f"{row}.sent_at")
    return f"{row}.status IN {OUTCOMES}", (
        INSERT + f"SELECT -{row}.broadcast_id, 'b_' || {row}.status, '', {sign} "
        f"WHERE {row}.broadcast_id IS NOT NULL AND {row}.status IN {OUTCOMES} "
        f"UNION ALL SELECT -{row}.broadcast_id, 'b_minute', {minute}, {sign} "
        f"WHERE {row}.broadcast_id IS NOT NULL AND {row}.status = 'sent' "
        f"AND {row}.sent_at IS NOT NULL"
    )


def _after_of_email(row: str, sign: int) -> Guarded:
    """A sent broadcast row whose recipient already unsubscribed or complained after it: its
    sent_at is the SMTP server's acceptance, recorded after a withdrawal meanwhile."""
    stopped = (
        f"{row}.status = 'sent' AND EXISTS (SELECT 1 FROM subscriber s "
        f"WHERE s.id = {row}.subscriber_id AND s.status IN ('unsubscribed', 'complained'))"
    )
    return stopped, (
        INSERT + f"SELECT -{row}.broadcast_id, v.name, '', {sign} FROM (SELECT "
        f"{AFTER.format(e=row)} FROM subscriber s WHERE s.id = {row}.subscriber_id "
        f"AND s.status IN ('unsubscribed', 'complained')) f, "
        "(SELECT 'b_unsub' AS name UNION ALL SELECT 'b_complained') v "
        f"WHERE {row}.broadcast_id IS NOT NULL AND {row}.status = 'sent' "
        "AND (v.name = 'b_unsub' AND f.unsub OR v.name = 'b_complained' AND f.complained)"
    )


def _after_of_person(row: str, sign: int) -> Guarded:
    """A person's change of state, over the broadcasts sent to them (a handful)."""
    return f"{row}.status IN ('unsubscribed', 'complained')", (
        INSERT + "SELECT -e.broadcast_id, v.name, '', " + str(sign) + " FROM (SELECT "
        f"e.broadcast_id, {AFTER.format(e='e')} FROM scheduled_email e, "
        f"(SELECT {row}.status AS status, {row}.unsubscribed_at AS unsubscribed_at, "
        f"{row}.updated_at AS updated_at) s WHERE e.subscriber_id = {row}.id "
        "AND e.status = 'sent' AND e.purpose = 'broadcast' "
        f"AND {row}.status IN ('unsubscribed', 'complained')) e, "
        "(SELECT 'b_unsub' AS name UNION ALL SELECT 'b_complained') v "
        "WHERE v.name = 'b_unsub' AND e.unsub OR v.name = 'b_complained' AND e.complained"
    )


def triggers(d: str) -> list[Trigger]:
    """(name, timing, event, table, when, statements) of every trigger on dialect `d`."""
    differ = DIFFER[d]
    outcome_moved = (
        f"({differ.format('OLD.status', 'NEW.status')} "
        f"OR {differ.format('OLD.sent_at', 'NEW.sent_at')}) "
        f"AND (OLD.status IN {OUTCOMES} OR NEW.status IN {OUTCOMES})"
    )
    return [
        ("kept_click_insert", "BEFORE", "INSERT", "click", "", _clicks("NEW", 1)),
        (
            "kept_click_update",
            "BEFORE",
            "UPDATE",
            "click",
            " OR ".join(
                differ.format(f"OLD.{c}", f"NEW.{c}")
                for c in ("automated", "url", "step_id", "subscriber_id", "magnet_id")
            )
            + f" OR {differ.format('OLD.broadcast_id', 'NEW.broadcast_id')}",
            [*_clicks("OLD", -1), *_clicks("NEW", 1)],
        ),
        ("kept_click_delete", "BEFORE", "DELETE", "click", "", _clicks("OLD", -1)),
        (
            "kept_broadcast_insert",
            "AFTER",
            "INSERT",
            "scheduled_email",
            f"NEW.broadcast_id IS NOT NULL AND NEW.status IN {OUTCOMES}",
            [_outcome(d, "NEW", 1), _after_of_email("NEW", 1)],
        ),
        (
            "kept_broadcast_update",
            "AFTER",
            "UPDATE",
            "scheduled_email",
            f"(OLD.broadcast_id IS NOT NULL OR NEW.broadcast_id IS NOT NULL) AND {outcome_moved}",
            [
                _outcome(d, "OLD", -1),
                _outcome(d, "NEW", 1),
                _after_of_email("OLD", -1),
                _after_of_email("NEW", 1),
            ],
        ),
        (
            "kept_broadcast_delete",
            "BEFORE",
            "DELETE",
            "scheduled_email",
            "OLD.broadcast_id IS NOT NULL",
            # Its person's unsubscribe or complaint is taken back by kept_recipient_delete:
            # rows go only with their person, who goes first.
            [_outcome(d, "OLD", -1)],
        ),
        (
            "kept_recipient_update",
            "AFTER",
            "UPDATE",
            "subscriber",
            f"{differ.format('OLD.status', 'NEW.status')} "
            f"OR {differ.format('OLD.unsubscribed_at', 'NEW.unsubscribed_at')}",
            [_after_of_person("OLD", -1), _after_of_person("NEW", 1)],
        ),
        # The person first (PostgreSQL's cascade): their rows are still there to count.
        (
            "kept_recipient_delete",
            "BEFORE",
            "DELETE",
            "subscriber",
            "",
            [_after_of_person("OLD", -1)],
        ),
    ]


def create_triggers(conn: Connection) -> None:
    """Create every trigger (PostgreSQL: a plpgsql function each). A SQLite batch rebuild of
    click, scheduled_email or subscriber drops them: call this again after one."""
    trigger_ddl.create(conn, triggers(conn.dialect.name))


def drop_triggers(conn: Connection) -> None:
    trigger_ddl.drop(conn, triggers(conn.dialect.name))


OURS = "name LIKE 'c\\_%' ESCAPE '\\' OR name LIKE 'b\\_%' ESCAPE '\\'"


def _row(magnet: str, name: str, part: str, n: str) -> str:
    return f"SELECT {magnet} AS magnet_id, {name} AS name, {part} AS part, {n} AS n "


def _contributions(d: str) -> list[str]:
    """The same figures counted from the rows at once (GROUP BY), as the triggers keep them."""
    link = f"c.step_id || '|' || substr(c.url, 1, {LINK_CHARS})"
    people = "count(DISTINCT c.subscriber_id)"
    out = []
    for magnet, where in (
        ("0", "1 = 1"),
        (TARGET.format("c"), f"{TARGET.format('c')} IS NOT NULL"),
    ):
        by = "" if magnet == "0" else f"{magnet}, "  # GROUP BY 0: a column's position
        human = f"{where} AND c.automated IS NULL"
        out += [
            _row(magnet, "'c_anyone'", "c.step_id", people)
            + f"FROM click c WHERE {where} GROUP BY {by}c.step_id",
            _row(magnet, "'c_people'", "c.step_id", people)
            + f"FROM click c WHERE {human} GROUP BY {by}c.step_id",
            _row(magnet, "'c_link'", link, people)
            + f"FROM click c WHERE {human} GROUP BY {by}{link}",
            _row(magnet, "'c_' || c.automated", "c.step_id", "count(*)")
            + f"FROM click c WHERE {where} AND c.automated IS NOT NULL "
            f"GROUP BY {by}c.automated, c.step_id",
        ]
    after = (
        f"FROM (SELECT e.broadcast_id, {AFTER.format(e='e')} FROM scheduled_email e "
        "JOIN subscriber s ON s.id = e.subscriber_id WHERE e.broadcast_id IS NOT NULL "
        "AND e.status = 'sent' AND s.status IN ('unsubscribed', 'complained')) f "
        "GROUP BY f.broadcast_id"
    )
    out += [
        _row("-x.broadcast_id", "'b_' || x.status", "''", "count(*)")
        + f"FROM scheduled_email x WHERE x.broadcast_id IS NOT NULL "
        f"AND x.status IN {OUTCOMES} GROUP BY x.broadcast_id, x.status",
        _row("-x.broadcast_id", "'b_minute'", MINUTE[d].format("x.sent_at"), "count(*)")
        + "FROM scheduled_email x WHERE x.broadcast_id IS NOT NULL AND x.status = 'sent' "
        f"AND x.sent_at IS NOT NULL GROUP BY x.broadcast_id, {MINUTE[d].format('x.sent_at')}",
        _row("-f.broadcast_id", "'b_unsub'", "''", "sum(CASE WHEN f.unsub THEN 1 ELSE 0 END)")
        + after,
        _row(
            "-f.broadcast_id",
            "'b_complained'",
            "''",
            "sum(CASE WHEN f.complained THEN 1 ELSE 0 END)",
        )
        + after,
    ]
    return out


def backfill(conn: Connection) -> None:
    """These figures' totals computed from the rows (their deltas and totals emptied first;
    the dashboard's own figures, rollup_sql.backfill's, are left alone)."""
    conn.execute(text(f"DELETE FROM figure_delta WHERE {OURS}"))
    conn.execute(text(f"DELETE FROM figure_total WHERE {OURS}"))
    for contribution in _contributions(conn.dialect.name):
        conn.execute(
            text(
                "INSERT INTO figure_total (magnet_id, name, part, n) "
                "SELECT r.magnet_id, r.name, r.part, SUM(r.n) "
                f"FROM ({contribution}) r WHERE r.n <> 0 GROUP BY r.magnet_id, r.name, r.part"
            )
        )

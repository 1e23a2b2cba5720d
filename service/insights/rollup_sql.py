"""The SQL that keeps the dashboard's figures: the triggers that append a delta for each
change (in the change's own transaction, so a figure is never behind), and the backfill
that computes the totals from the rows at once (migration 0013, and `rebuild`).

A figure is a row (magnet_id, name, part) of figure_total plus its unfolded deltas:
- signups/<UTC day>, people/signed_up|confirmed|downloaded: magnet 0 counts everyone
  (subscriber rows), a magnet's id the people who took it (enrolment rows); a magnet's
  downloaded, those who downloaded its own guide (the enrolment's guide_downloads);
- sent|failed|refused/<step>: drip emails by their magnet (-1: none), per step;
- bounced|complained/<step>: people in that state now, under the drip email their latest
  bounce or complaint report names, else the last drip email they got (0: of any magnet;
  a magnet's id: of that magnet's, for people who took it);
- unsub/<step>: withdrawals, under the last drip email sent before them (0: all; a
  magnet's: those that stopped it, its own and the one-click ones);
- inbox/<UTC hour sent>|<latency bucket>|<step, '' for confirmations>: time to inbox.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from ..core.models import COUNTED_PERSON, COUNTED_TAKER
from . import trigger_ddl
from .trigger_ddl import INSERT, Guarded, Trigger

# The same statements on both backends but for these few expressions.
SQL = {
    "postgresql": {
        "day": "to_char({0} AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        "hour": "to_char({0} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24')",
        "secs": "EXTRACT(EPOCH FROM ({1} - {0}))",
        "differ": "{0} IS DISTINCT FROM {1}",
    },
    "sqlite": {
        "day": "date({0})",
        "hour": "strftime('%Y-%m-%dT%H', {0})",
        "secs": "ROUND((julianday({1}) - julianday({0})) * 86400.0, 3)",  # julianday: ~0.1 ms off
        "differ": "{0} IS NOT {1}",
    },
}
# Upper bounds (seconds) of the time-to-inbox histogram's buckets; past the last: 999999.
# service/insights/rollup.py reads the same numbers back.
BUCKETS = (*range(1, 11), 12, 15, 20, 25, 30, 40, 50, 60, 90, 120, 180, 240, 300, 600, 900)
BUCKETS += (1800, 3600, 7200, 21600, 86400)
SENT_OR_FAILED = "('sent', 'failed')"
STOPPED = "('bounced', 'complained')"
REPORTS = "('hard_bounce', 'soft_bounce', 'complaint')"  # webhook_event kinds that stop mail


def _sql(dialect: str, what: str, *args: str) -> str:
    return SQL[dialect][what].format(*args)


def _bucket(secs: str) -> str:
    whens = " ".join(f"WHEN {secs} < {b} THEN '{b}'" for b in BUCKETS)
    return f"CASE {whens} ELSE '999999' END"


def _last(sub: str, magnet: str | None = None, before: str | None = None) -> str:
    """The step of a person's latest drip email that left or was refused (with `before`:
    that left by then), of one magnet or of any: the figures' "last email before"."""
    where = [f"e.subscriber_id = {sub}", "e.purpose = 'drip'"]
    if magnet is not None:
        where.append(f"e.magnet_id = {magnet}")
    if before is None:
        where.append(f"e.status IN {SENT_OR_FAILED}")
    else:
        where += ["e.status = 'sent'", f"e.sent_at <= {before}"]
    return (
        f"(SELECT e.step_id FROM scheduled_email e WHERE {' AND '.join(where)} "
        "ORDER BY e.id DESC LIMIT 1)"
    )


def _named(sub: str, magnet: str | None = None) -> str:
    """The step of the drip email (of this magnet, or of any) that the person's latest
    bounce or complaint report names, as webhooks.events.reported_step finds it: NULL when
    that report names none, or an email of another kind or magnet."""
    latest = (
        "(SELECT w.email_id FROM webhook_event w JOIN scheduled_email x ON x.id = w.email_id "
        f"WHERE x.subscriber_id = {sub} AND w.kind IN {REPORTS} ORDER BY w.id DESC LIMIT 1)"
    )
    scope = "" if magnet is None else f" AND r.magnet_id = {magnet}"
    return (
        f"(SELECT r.step_id FROM scheduled_email r WHERE r.id = {latest} "
        f"AND r.purpose = 'drip'{scope})"
    )


def _blamed(sub: str, magnet: str | None = None) -> str:
    """The step a bounced or complained person counts under: the email their report names
    (a complaint about the guide that arrives after the next step left is the guide's),
    else the last drip email they got."""
    return f"COALESCE({_named(sub, magnet)}, {_last(sub, magnet)})"


def _taken(sub: str) -> str:
    """Rows (magnet_id) of everyone's figure (0) and of each magnet the person took."""
    return (
        "(SELECT 0 AS magnet_id UNION ALL "
        f"SELECT en.magnet_id FROM enrolment en WHERE en.subscriber_id = {sub}) m"
    )


def _stopped(sub: str, status: str, sign: int, when: str = "1 = 1") -> str:
    """A bounced or complained person counts under the step blamed: overall (0) and of
    each magnet they took."""
    last_steps = (
        f"(SELECT 0 AS magnet_id, {_blamed(sub)} AS step UNION ALL "
        f"SELECT en.magnet_id, {_blamed(sub, 'en.magnet_id')} FROM enrolment en "
        f"WHERE en.subscriber_id = {sub}) ls"
    )
    return (
        INSERT + f"SELECT ls.magnet_id, {status}, ls.step, {sign} FROM {last_steps} "
        f"WHERE {when} AND {status} IN {STOPPED} AND ls.step IS NOT NULL"
    )


def _flags(new: str | None, old: str | None, sub: str) -> str:
    """confirmed, overall and per magnet taken, and downloaded (any guide), overall: +1 when
    a flag turns true, -1 when it turns false. A magnet's downloaded is its enrolment's."""

    def turned(test: str) -> str:
        value = [
            "0" if row is None else f"(CASE WHEN {test.format(row)} THEN 1 ELSE 0 END)"
            for row in (new, old)
        ]
        return f"({value[0]} - {value[1]})"

    flags = (
        f"(SELECT 'confirmed' AS part, {turned('{0}.confirmed_at IS NOT NULL')} AS d "
        f"UNION ALL SELECT 'downloaded', {turned('{0}.guide_downloads > 0')}) f"
    )
    return (
        INSERT + f"SELECT m.magnet_id, 'people', f.part, f.d FROM {_taken(sub)}, {flags} "
        "WHERE f.d <> 0 AND (f.part = 'confirmed' OR m.magnet_id = 0)"
    )


def _withdrawal(sign: int, row: str, sub: str, source: str = "") -> str:
    """A withdrawal counts under the last step sent before it: overall (0), and under each
    magnet it stopped (its own, or every one taken for a one-click withdrawal)."""
    where = (
        "1 = 1" if not source else f"{row}.subscriber_id = {sub} AND {row}.action = 'withdrawal'"
    )
    scoped = f"({row}.magnet_id IS NULL OR {row}.magnet_id = en.magnet_id)"
    everyone = f"SELECT 0 AS magnet_id, {_last(sub, None, row + '.created_at')} AS step"
    magnets = f"SELECT en.magnet_id, {_last(sub, 'en.magnet_id', row + '.created_at')}"
    return (
        INSERT + f"SELECT w.magnet_id, 'unsub', w.step, {sign} FROM ("
        f"{everyone} {source} WHERE {where} UNION ALL "
        f"{magnets} FROM {source.removeprefix('FROM ') + ', ' if source else ''}enrolment en "
        f"WHERE {where} AND en.subscriber_id = {sub} AND {scoped}) w WHERE w.step IS NOT NULL"
    )


def _email(d: str, row: str, sign: int, source: str = "") -> list[Guarded]:
    """What an email row counts by itself: sent or failed per step (drip), and the time to
    inbox of a sent drip or confirmation email, by the hour it left and a latency bucket."""
    magnet = f"COALESCE({row}.magnet_id, -1)"
    counted = f"{row}.purpose = 'drip' AND {row}.status IN {SENT_OR_FAILED}"
    arrived = (
        f"{row}.status = 'sent' AND {row}.purpose IN ('drip', 'confirm') "
        f"AND {row}.sent_at IS NOT NULL"
    )
    secs = _sql(d, "secs", f"{row}.created_at", f"{row}.sent_at")
    part = (
        f"{_sql(d, 'hour', row + '.sent_at')} || '|' || {_bucket(secs)} || '|' || "
        f"(CASE WHEN {row}.purpose = 'confirm' THEN '' ELSE {row}.step_id END)"
    )
    return [
        (
            counted,
            INSERT + f"SELECT {magnet} AS magnet_id, {row}.status AS name, "
            f"{row}.step_id AS part, {sign} AS n {source} WHERE {counted}",
        ),
        (
            arrived,
            INSERT + f"SELECT {magnet} AS magnet_id, 'inbox' AS name, {part} AS part, "
            f"{sign} AS n {source} WHERE {arrived}",
        ),
    ]


def _moved(d: str, becomes: str, when: str) -> list[Guarded]:
    """A drip email of a bounced or complained person joins the sent-or-failed ones (or
    leaves them, `becomes` false): the person now counts under the new last step. The
    bounce itself is such a case when the person's row is written before the email's.
    Nearly every send is someone else's: PostgreSQL tests that first (IF), as planning
    these statements for each row costs more than running them. A person whose report
    names an email of the scope counts under it, whatever is sent: nothing moves."""
    statements = []
    gate = (
        f"{when} AND EXISTS (SELECT 1 FROM subscriber s0 WHERE s0.id = NEW.subscriber_id "
        f"AND s0.status IN {STOPPED})"
    )
    for magnet, scope, took in (
        ("0", "", "1 = 1"),
        (
            "NEW.magnet_id",
            "AND e.magnet_id = NEW.magnet_id ",
            "EXISTS (SELECT 1 FROM enrolment en WHERE en.subscriber_id = NEW.subscriber_id "
            "AND en.magnet_id = NEW.magnet_id)",
        ),
    ):
        named = _named("NEW.subscriber_id", None if magnet == "0" else magnet)
        others = (
            "FROM scheduled_email e WHERE e.subscriber_id = NEW.subscriber_id "
            f"AND e.purpose = 'drip' AND e.status IN {SENT_OR_FAILED} AND e.id <> NEW.id {scope}"
        )
        latest = f"(SELECT e.step_id {others}ORDER BY e.id DESC LIMIT 1)"
        highest = f"(CASE WHEN EXISTS (SELECT 1 {others}AND e.id > NEW.id) THEN 0 ELSE 1 END)"
        with_row = "(CASE WHEN q.hi = 1 THEN NEW.step_id ELSE q.x END)"
        old = f"(CASE WHEN {becomes} THEN q.x ELSE {with_row} END)"
        new = f"(CASE WHEN {becomes} THEN {with_row} ELSE q.x END)"
        source = (
            f"FROM subscriber s, (SELECT {latest} AS x, {highest} AS hi) q "
            f"WHERE {'1 = 1' if d == 'postgresql' else gate} AND {took} "
            f"AND s.id = NEW.subscriber_id AND {named} IS NULL "
            f"AND {_sql(d, 'differ', old, new)}"
        )
        statements.append(
            INSERT + f"SELECT {magnet}, s.status, {old}, -1 {source} AND {old} IS NOT NULL "
            f"UNION ALL SELECT {magnet}, s.status, {new}, 1 {source} AND {new} IS NOT NULL"
        )
    return [(gate, ";\n".join(statements))]


def _refused(sign: int, email: str, attempt_filter: str) -> str:
    """An email the server refused (a bounce in its delivery log) counts once, per step."""
    return (
        INSERT + f"SELECT COALESCE(e.magnet_id, -1), 'refused', e.step_id, {sign} "
        f"FROM scheduled_email e WHERE e.id = {email} AND e.purpose = 'drip' "
        f"AND {attempt_filter}"
    )


def _stopped_rows(where: str) -> str:
    """(magnet_id, name, part) of each bounced or complained person `where` holds (on s):
    overall and per magnet taken, under the step blamed (part NULL: none got one)."""
    return (
        f"SELECT 0 AS magnet_id, s.status AS name, {_blamed('s.id')} AS part "
        f"FROM subscriber s WHERE s.status IN {STOPPED} AND {where} UNION ALL "
        f"SELECT en.magnet_id, s.status, {_blamed('s.id', 'en.magnet_id')} "
        "FROM subscriber s JOIN enrolment en ON en.subscriber_id = s.id "
        f"WHERE s.status IN {STOPPED} AND {where}"
    )


def _restated(emails: list[str], sign: int) -> str:
    """A report naming an email may change the step its person counts under: the person
    is taken out before the change (sign -1, a BEFORE trigger) and put back after it (1).
    PostgreSQL runs AFTER row triggers at the statement's end: one report row a statement
    (as webhooks/events.py writes them; erasure's SET NULL finds the person gone)."""
    owners = f"(SELECT e.subscriber_id FROM scheduled_email e WHERE e.id IN ({', '.join(emails)}))"
    return (
        INSERT + f"SELECT b.magnet_id, b.name, b.part, {sign} "
        f"FROM ({_stopped_rows(f's.id IN {owners}')}) b WHERE b.part IS NOT NULL"
    )


def _reports(d: str) -> list[Trigger]:
    """The triggers on webhook_event: a pair (out before, back in after) per event."""
    differ = _sql(d, "differ", "OLD.{0}", "NEW.{0}")
    names = "{0}.email_id IS NOT NULL AND {0}.kind IN " + REPORTS
    changed = f"{differ.format('email_id')} OR {differ.format('kind')}"
    found: list[Trigger] = []
    for event, when, emails in (
        ("INSERT", names.format("NEW"), ["NEW.email_id"]),
        ("UPDATE", changed, ["OLD.email_id", "NEW.email_id"]),
        ("DELETE", names.format("OLD"), ["OLD.email_id"]),
    ):
        for step, timing, sign in (("out", "BEFORE", -1), ("in", "AFTER", 1)):
            name = f"figures_report_{step}_{event.lower()}"
            found.append((name, timing, event, "webhook_event", when, [_restated(emails, sign)]))
    return found


def _enrolment_downloads(d: str) -> Trigger:
    """A magnet's downloaded: its takers who downloaded its guide (turned on or off)."""
    turned = _sql(d, "differ", "OLD.guide_downloads > 0", "NEW.guide_downloads > 0")
    return (
        "figures_enrolment_update",
        "AFTER",
        "UPDATE",
        "enrolment",
        f"{turned} OR {_sql(d, 'differ', 'OLD.magnet_id', 'NEW.magnet_id')}",
        [
            INSERT + "SELECT OLD.magnet_id, 'people', 'downloaded', -1 "
            "WHERE OLD.guide_downloads > 0 "
            "UNION ALL SELECT NEW.magnet_id, 'people', 'downloaded', 1 "
            "WHERE NEW.guide_downloads > 0",
        ],
    )


def _uncounted(d: str, setting: str, row: str) -> str:
    """A new row's trigger runs unless the statement that inserts it counted it (PostgreSQL:
    SQLite has no newcomer's statement)."""
    return f"current_setting('{setting}', true) IS DISTINCT FROM {row}" if d == "postgresql" else ""


def triggers(d: str) -> list[Trigger]:
    """(name, timing, event, table, when, statements) of every trigger on dialect `d`."""
    day = _sql(d, "day", "{0}")
    differ = _sql(d, "differ", "OLD.{0}", "NEW.{0}")
    in_sf = "({0}.status IN " + SENT_OR_FAILED + ")"
    bounced = (
        "EXISTS (SELECT 1 FROM delivery_attempt a WHERE a.email_id = {0} "
        "AND a.outcome = 'bounced'{1})"
    )
    return [
        (
            "figures_subscriber_insert",
            "AFTER",
            "INSERT",
            "subscriber",
            _uncounted(d, COUNTED_PERSON, "NEW.email_key"),
            [
                INSERT + f"SELECT 0, v.name, v.part, 1 FROM ("
                f"SELECT 'signups' AS name, {day.format('NEW.created_at')} AS part "
                "UNION ALL SELECT 'people', 'signed_up' "
                "UNION ALL SELECT 'people', 'confirmed' WHERE NEW.confirmed_at IS NOT NULL "
                "UNION ALL SELECT 'people', 'downloaded' WHERE NEW.guide_downloads > 0) v",
            ],
        ),
        (
            "figures_subscriber_update",
            "AFTER",
            "UPDATE",
            "subscriber",
            " OR ".join(differ.format(c) for c in ("status", "confirmed_at", "guide_downloads")),
            [
                _flags("NEW", "OLD", "NEW.id"),
                _stopped("NEW.id", "OLD.status", -1, "OLD.status <> NEW.status"),
                _stopped("NEW.id", "NEW.status", 1, "OLD.status <> NEW.status"),
            ],
        ),
        (
            "figures_subscriber_delete",
            "BEFORE",
            "DELETE",
            "subscriber",
            "",
            [
                INSERT + f"VALUES (0, 'signups', {day.format('OLD.created_at')}, -1), "
                "(0, 'people', 'signed_up', -1)",
                _flags(None, "OLD", "OLD.id"),
                _stopped("OLD.id", "OLD.status", -1),
                _withdrawal(-1, "c", "OLD.id", "FROM consent_record c"),
            ],
        ),
        (
            "figures_enrolment_insert",
            "AFTER",
            "INSERT",
            "enrolment",
            _uncounted(d, COUNTED_TAKER, "NEW.subscriber_id::text"),
            [
                # One statement (a signup's cost): the day and the taker always, the
                # person's flags and a bounce or complaint (not at signup) as they stand.
                INSERT + "SELECT NEW.magnet_id, v.name, v.part, 1 FROM subscriber s, ("
                f"SELECT 'signups' AS name, {day.format('NEW.taken_at')} AS part, 1 AS k "
                "UNION ALL SELECT 'people', 'signed_up', 2 "
                "UNION ALL SELECT 'people', 'confirmed', 3 "
                "UNION ALL SELECT 'people', 'downloaded', 4) v "
                "WHERE s.id = NEW.subscriber_id AND (v.k < 3 "
                "OR v.k = 3 AND s.confirmed_at IS NOT NULL OR v.k = 4 AND NEW.guide_downloads > 0) "
                "UNION ALL SELECT NEW.magnet_id, s.status, "
                f"{_blamed('NEW.subscriber_id', 'NEW.magnet_id')}, 1 FROM subscriber s "
                f"WHERE s.id = NEW.subscriber_id AND s.status IN {STOPPED} "
                # In a CASE on the row's status: bare, PostgreSQL runs the step's lookups
                # once before any row as a filter of constants, for every signup.
                f"AND CASE WHEN s.status IN {STOPPED} THEN "
                f"{_blamed('NEW.subscriber_id', 'NEW.magnet_id')} END IS NOT NULL",
            ],
        ),
        # Only the person's going deletes enrolments: its BEFORE DELETE took the rest back.
        (
            "figures_enrolment_delete",
            "AFTER",
            "DELETE",
            "enrolment",
            "",
            [
                INSERT + f"VALUES (OLD.magnet_id, 'signups', {day.format('OLD.taken_at')}, -1), "
                "(OLD.magnet_id, 'people', 'signed_up', -1)",
                INSERT + "SELECT OLD.magnet_id, 'people', 'downloaded', -1 "
                "WHERE OLD.guide_downloads > 0",
            ],
        ),
        _enrolment_downloads(d),
        (
            "figures_email_insert",
            "AFTER",
            "INSERT",
            "scheduled_email",
            in_sf.format("NEW"),
            [
                *_email(d, "NEW", 1),
                *_moved(d, "1 = 1", "NEW.purpose = 'drip'"),
            ],
        ),
        (
            "figures_email_update",
            "AFTER",
            "UPDATE",
            "scheduled_email",
            f"({in_sf.format('OLD')} OR {in_sf.format('NEW')}) AND "
            f"({differ.format('status')} OR {differ.format('sent_at')})",
            [
                *_email(d, "OLD", -1),
                *_email(d, "NEW", 1),
                *_moved(
                    d,
                    in_sf.format("NEW"),
                    f"NEW.purpose = 'drip' AND {in_sf.format('OLD')} <> {in_sf.format('NEW')}",
                ),
            ],
        ),
        (
            "figures_email_delete",
            "BEFORE",
            "DELETE",
            "scheduled_email",
            "",
            [
                *_email(d, "OLD", -1),
                _refused(-1, "OLD.id", bounced.format("OLD.id", "")),
            ],
        ),
        (
            "figures_withdrawal",
            "AFTER",
            "INSERT",
            "consent_record",
            "NEW.action = 'withdrawal'",
            [
                _withdrawal(1, "NEW", "NEW.subscriber_id"),
            ],
        ),
        (
            "figures_bounce",
            "AFTER",
            "INSERT",
            "delivery_attempt",
            "NEW.outcome = 'bounced'",
            [
                _refused(
                    1,
                    "NEW.email_id",
                    "NOT " + bounced.format("NEW.email_id", " AND a.id <> NEW.id"),
                ),
            ],
        ),
        *_reports(d),
    ]


def create_triggers(conn: Connection) -> None:
    """Create every trigger (PostgreSQL: a plpgsql function each)."""
    trigger_ddl.create(conn, triggers(conn.dialect.name))


def drop_triggers(conn: Connection) -> None:
    trigger_ddl.drop(conn, triggers(conn.dialect.name))


def _contributions(d: str) -> dict[str, list[str]]:
    """Every row's contribution, as the triggers count it, in one pass over each table; by
    group (GROUPS: the figures of each)."""
    day = _sql(d, "day", "{0}")
    joined = "subscriber s JOIN enrolment en ON en.subscriber_id = s.id"
    return {
        "people": [
            f"SELECT 0 AS magnet_id, 'signups' AS name, {day.format('s.created_at')} AS part, "
            "1 AS n FROM subscriber s "
            "UNION ALL SELECT 0, 'people', 'signed_up', 1 FROM subscriber s "
            "UNION ALL SELECT 0, 'people', 'confirmed', 1 FROM subscriber s "
            "WHERE s.confirmed_at IS NOT NULL",
            f"SELECT en.magnet_id AS magnet_id, 'signups' AS name, "
            f"{day.format('en.taken_at')} AS part, 1 AS n FROM enrolment en "
            "UNION ALL SELECT en.magnet_id, 'people', 'signed_up', 1 FROM enrolment en "
            f"UNION ALL SELECT en.magnet_id, 'people', 'confirmed', 1 FROM {joined} "
            "WHERE s.confirmed_at IS NOT NULL",
        ],
        "downloaded": [
            "SELECT 0 AS magnet_id, 'people' AS name, 'downloaded' AS part, 1 AS n "
            "FROM subscriber s WHERE s.guide_downloads > 0 "
            "UNION ALL SELECT en.magnet_id, 'people', 'downloaded', 1 FROM enrolment en "
            "WHERE en.guide_downloads > 0",
        ],
        "stopped": [
            f"SELECT r.magnet_id, r.name, r.part, 1 AS n FROM ({_stopped_rows('1 = 1')}) r"
        ],
        "other": [
            "SELECT 0 AS magnet_id, 'unsub' AS name, "
            f"{_last('c.subscriber_id', None, 'c.created_at')} AS part, 1 AS n "
            "FROM consent_record c WHERE c.action = 'withdrawal' UNION ALL "
            f"SELECT en.magnet_id, 'unsub', "
            f"{_last('c.subscriber_id', 'en.magnet_id', 'c.created_at')}, 1 "
            "FROM consent_record c JOIN enrolment en ON en.subscriber_id = c.subscriber_id "
            "WHERE c.action = 'withdrawal' "
            "AND (c.magnet_id IS NULL OR c.magnet_id = en.magnet_id)",
            *(sql.removeprefix(INSERT) for _, sql in _email(d, "x", 1, "FROM scheduled_email x")),
            "SELECT COALESCE(x.magnet_id, -1) AS magnet_id, 'refused' AS name, "
            "x.step_id AS part, 1 AS n FROM scheduled_email x "
            "WHERE x.purpose = 'drip' AND EXISTS (SELECT 1 FROM delivery_attempt a "
            "WHERE a.email_id = x.id AND a.outcome = 'bounced')",
        ],
    }


# The figure rows (magnet_id, name, part) a group of contributions counts; "other", the
# rest, is counted by a whole backfill only.
GROUPS = {
    "downloaded": "name = 'people' AND part = 'downloaded'",
    "stopped": f"name IN {STOPPED}",
}


def backfill(conn: Connection, groups: tuple[str, ...] = ()) -> None:
    """Totals computed from the rows as they are: of every figure, or of those of `groups`
    alone (a migration that changed how they count). Their deltas and totals go first."""
    contributions = _contributions(conn.dialect.name)
    keys = " OR ".join(f"({GROUPS[g]})" for g in groups) if groups else "1 = 1"
    conn.execute(text(f"DELETE FROM figure_delta WHERE {keys}"))
    conn.execute(text(f"DELETE FROM figure_total WHERE {keys}"))
    for group in groups or tuple(contributions):
        for contribution in contributions[group]:
            conn.execute(
                text(
                    "INSERT INTO figure_delta (magnet_id, name, part, n) "
                    f"SELECT * FROM ({contribution}) r WHERE r.part IS NOT NULL"
                )
            )
    # The other figures' unfolded deltas stay for the fold.
    conn.execute(
        text(
            "INSERT INTO figure_total (magnet_id, name, part, n) "
            f"SELECT magnet_id, name, part, SUM(n) FROM figure_delta WHERE {keys} "
            "GROUP BY magnet_id, name, part"
        )
    )
    conn.execute(text(f"DELETE FROM figure_delta WHERE {keys}"))

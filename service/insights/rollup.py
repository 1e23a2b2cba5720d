"""Reading the kept figures (totals plus the deltas not folded yet, so exact at once) and
folding the deltas into the totals (each scheduler pass), in time bounded by the number of
figures, not of people or emails. What each figure counts: rollup_sql.py."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import bindparam, text

from ..core.extensions import db

EVERYONE = 0  # the magnet_id of figures about people, counted once per person
INBOX_KEPT = timedelta(days=2)  # hours of time-to-inbox figures kept (the page reads a day)
MINUTES_KEPT = timedelta(hours=1)  # minutes of a broadcast's sends kept (its rate reads two)
# The fold's PostgreSQL advisory lock: two workers folding at once would wait on each
# other's totals; the second simply leaves the deltas to the first.
FOLD_LOCK = 0x6669677572657321


def read(
    names: Iterable[str], magnet_ids: list[int] | None, part_from: str | None = None
) -> dict[tuple[str, str], int]:
    """{(name, part): count} over the given magnets' rows (None: every magnet's), with
    parts from `part_from` on (text order: ISO days and hours). One statement, so one
    snapshot: a fold running meanwhile is seen wholly or not at all."""
    where = ["name IN :names"]
    params: dict[str, object] = {"names": list(names)}
    if magnet_ids is not None:
        where.append("magnet_id IN :magnets")
        params["magnets"] = magnet_ids
    if part_from is not None:
        where.append("part >= :part_from")
        params["part_from"] = part_from
    condition = " AND ".join(where)
    query = text(
        f"SELECT name, part, SUM(n) FROM (SELECT name, part, n FROM figure_total "
        f"WHERE {condition} UNION ALL SELECT name, part, n FROM figure_delta "
        f"WHERE {condition}) f GROUP BY name, part"
    ).bindparams(bindparam("names", expanding=True))
    if magnet_ids is not None:
        query = query.bindparams(bindparam("magnets", expanding=True))
    rows = db.session.execute(query, params).all()
    return {(name, part): int(n) for name, part, n in rows if n}


def people_of(magnet_id: int | None) -> list[int]:
    """The rows of a figure about people: everyone's, or those of one magnet's takers."""
    return [EVERYONE if magnet_id is None else magnet_id]


def emails_of(magnet_id: int | None) -> list[int] | None:
    """The rows of a figure about emails: every magnet's (summed), or one magnet's."""
    return None if magnet_id is None else [magnet_id]


def fold(now: datetime) -> int:
    """Move the deltas into the totals, in one transaction; returns the deltas moved.
    Time-to-inbox hours and broadcast minutes no page reads any more go too, and totals
    back to 0."""
    if db.engine.dialect.name == "postgresql":
        if not db.session.scalar(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": FOLD_LOCK}
        ):
            db.session.rollback()
            return 0
        moved = _fold_postgresql()
    else:
        moved = _fold_sqlite()
    stale = (now - INBOX_KEPT).strftime("%Y-%m-%dT%H")
    db.session.execute(
        text("DELETE FROM figure_total WHERE name = 'inbox' AND part < :stale"), {"stale": stale}
    )
    db.session.execute(
        text("DELETE FROM figure_total WHERE name = 'b_minute' AND part < :stale"),
        {"stale": (now - MINUTES_KEPT).strftime("%Y-%m-%dT%H:%M")},
    )
    # A figure back to nothing goes: a link's row names its URL, which may carry a reader's
    # data (a personalised link) after that reader's hits were deleted.
    db.session.execute(text("DELETE FROM figure_total WHERE n = 0"))
    db.session.commit()
    return moved


def _fold_postgresql() -> int:
    # DELETE ... RETURNING takes exactly the rows it removed: a delta committed meanwhile
    # stays for the next fold, and a second fold cannot move a row twice. Totals upserted
    # in key order.
    return (
        db.session.scalar(
            text(
                "WITH moved AS (DELETE FROM figure_delta RETURNING magnet_id, name, part, n), "
                "folded AS (INSERT INTO figure_total (magnet_id, name, part, n) "
                "SELECT magnet_id, name, part, SUM(n) FROM moved GROUP BY magnet_id, name, part "
                "ORDER BY magnet_id, name, part "
                "ON CONFLICT (magnet_id, name, part) "
                "DO UPDATE SET n = figure_total.n + EXCLUDED.n) "
                "SELECT count(*) FROM moved"
            )
        )
        or 0
    )


def _fold_sqlite() -> int:
    # One writer at a time on SQLite (the app's transactions take the write lock first), so
    # nothing is appended between these statements.
    last = db.session.scalar(text("SELECT MAX(id) FROM figure_delta"))
    if last is None:
        return 0
    moved = db.session.scalar(
        text("SELECT count(*) FROM figure_delta WHERE id <= :last"), {"last": last}
    )
    db.session.execute(
        text(
            "INSERT INTO figure_total (magnet_id, name, part, n) "
            "SELECT magnet_id, name, part, SUM(n) FROM figure_delta WHERE id <= :last "
            "GROUP BY magnet_id, name, part "
            "ON CONFLICT (magnet_id, name, part) DO UPDATE SET n = figure_total.n + excluded.n"
        ),
        {"last": last},
    )
    db.session.execute(text("DELETE FROM figure_delta WHERE id <= :last"), {"last": last})
    return moved or 0

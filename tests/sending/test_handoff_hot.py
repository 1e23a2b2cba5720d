"""The scheduler's hand-off writes no index entry on PostgreSQL: its update (queued_at) is
heap-only, which is what keeps a cold claim among a million rows near one among ten
thousand (bench/scheduler)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from service.core.extensions import db
from service.sending.context import for_app
from service.sending.dispatch import claim_due, release, renew

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
# Pages filled by one statement as far as the table lets them; one row in 40 due, about one
# a page, as due rows are scattered among many waiting ones.
ROWS, EVERY = 2000, 40
FILL = """
INSERT INTO subscriber (email, email_key, status, created_at, updated_at, guide_downloads,
                        token_key)
SELECT 'p' || n || '@example.com', 'p' || n || '@example.com', 'active', :now, :now, 0,
       md5(n::text)
FROM generate_series(1, :rows) AS n;
INSERT INTO scheduled_email (subscriber_id, step_id, purpose, status, anchor_at, due_at,
                             attempts, message_id, created_at)
SELECT id, 'welcome', 'drip', 'pending', :now,
       CASE WHEN id % :every = 0 THEN :due ELSE :due + interval '2 days' END,
       0, '<' || id || '@hot.example>', :now
FROM subscriber
"""


def hot_updates() -> tuple[int, int]:
    """(updates, heap-only updates) of scheduled_email so far. This backend's counts are
    flushed first: forced, at the end of this statement's transaction."""
    db.session.execute(text("SELECT pg_stat_force_next_flush()"))
    db.session.commit()
    db.session.execute(text("SELECT pg_stat_clear_snapshot()"))
    row = db.session.execute(
        text(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
            "WHERE relname = 'scheduled_email'"
        )
    ).one()
    db.session.commit()
    return row[0], row[1]


@pytest.mark.postgres
def test_handing_off_renewing_and_releasing_rows_touch_no_index(pg_app):
    with pg_app.app_context():
        # Fresh pages, as the bench's table has: the fixture's DELETE leaves other tests'
        # dead rows on them, and a full page has no room for a heap-only update.
        db.session.execute(text("TRUNCATE subscriber, scheduled_email CASCADE"))
        for statement in FILL.strip().split(";\n"):
            db.session.execute(
                text(statement),
                {"now": NOW, "due": NOW - timedelta(minutes=1), "rows": ROWS, "every": EVERY},
            )
        db.session.commit()
        if int(db.session.scalar(text("SHOW server_version_num"))) < 150000:
            pytest.skip("pg_stat_force_next_flush() came with PostgreSQL 15")
        db.engine.dispose()  # one connection from here on: its counts are the ones flushed
        before = hot_updates()
        ids = claim_due(for_app(pg_app), NOW, limit=ROWS)
        renew(ids, NOW + timedelta(seconds=30))
        release(ids)
        updates, hot = (after - was for after, was in zip(hot_updates(), before, strict=True))
    assert len(ids) == ROWS // EVERY
    assert updates == 3 * len(ids)
    assert hot == updates, "a hand-off update wrote index entries (full pages, or an index)"

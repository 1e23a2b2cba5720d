"""bench/dashboard: the owner's dashboard figures on PostgreSQL filled with 100k and 1M
subscribers (four sent drip emails each, some bounced, complained, withdrawn), each figure
timed on a fresh connection (median of ROUNDS), and the whole /admin/ page; prints the 1M
time and the 1M / 100k ratio. Goal: page < 300 ms at 1M and <= 2x from 100k.

The figures are kept by triggers (migration 0013): the fill is written at revision 0012 and
the upgrade backfills them (timed). Then a day of new events (1/60 of the list signing up,
four sends each) goes through the triggers, timed against the same statements with the
triggers off (session_replication_role), the page is timed with that day unfolded, and
the fold of that day is timed: what the figures cost elsewhere is printed, not hidden.

Run: .venv/bin/python -m bench.dashboard   (BENCH_DASHBOARD_SIZES=100000,1000000)
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable

from flask_migrate import upgrade
from sqlalchemy import text

from bench.common import SECRET_KEY, create_scratch_database, drop_scratch_database, header, verdict
from service import create_app
from service.core.clock import utcnow
from service.core.extensions import db
from service.insights import clicks, rollup, stats
from service.people.enrolments import all_magnets
from service.sending.context import for_app

SIZES = [int(n) for n in os.environ.get("BENCH_DASHBOARD_SIZES", "100000,1000000").split(",")]
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
FILL = """
INSERT INTO subscriber (email, email_key, mailbox_key, status, created_at, updated_at,
                        confirmed_at, guide_downloads, token_key)
SELECT 's' || n || '@example.com', 's' || n || '@example.com', 's' || n || '@example.com',
       CASE WHEN n % 100 = 0 THEN 'bounced' WHEN n % 250 = 0 THEN 'complained'
            WHEN n % 50 = 0 THEN 'unsubscribed' ELSE 'active' END,
       now() - (n % 60) * interval '1 day', now(), now() - (n % 60) * interval '1 day',
       n % 3, md5(n::text)
FROM generate_series(1, :rows) AS n;
INSERT INTO enrolment (subscriber_id, magnet_id, taken_at)
SELECT id, :magnet, created_at FROM subscriber;
INSERT INTO scheduled_email (subscriber_id, magnet_id, step_id, purpose, status, anchor_at,
                             due_at, attempts, message_id, sent_at, created_at)
SELECT s.id, :magnet, (CAST(:steps AS text[]))[k], 'drip',
       CASE WHEN s.id % 100 = 0 AND k = 4 THEN 'failed' ELSE 'sent' END,
       s.created_at, s.created_at + k * interval '1 day', 1,
       '<' || s.id || '.' || k || '@bench.example>', s.created_at + k * interval '1 day',
       s.created_at + k * interval '1 day'
FROM subscriber s, generate_series(1, 4) AS k;
INSERT INTO delivery_attempt (email_id, message_id, outcome, smtp_code, created_at)
SELECT id, message_id, 'bounced', 550, created_at FROM scheduled_email WHERE status = 'failed';
INSERT INTO consent_record (subscriber_id, action, text, text_version, text_sha256, source,
                            created_at)
SELECT id, 'withdrawal', 'stop', '1', md5('stop'), 'unsubscribe-link', updated_at
FROM subscriber WHERE status = 'unsubscribed'
"""
# A day of new people, as signup writes them: subscriber, enrolment, first email pending.
DAY_SIGNUPS = """
INSERT INTO subscriber (email, email_key, mailbox_key, status, created_at, updated_at,
                        confirmed_at, guide_downloads, token_key)
SELECT 'd' || n || '@example.com', 'd' || n || '@example.com', 'd' || n || '@example.com',
       'active', now(), now(), now(), 0, md5(n::text)
FROM generate_series(:base, :base + :rows - 1) AS n;
INSERT INTO enrolment (subscriber_id, magnet_id, taken_at)
SELECT id, :magnet, created_at FROM subscriber WHERE email LIKE 'd%';
INSERT INTO scheduled_email (subscriber_id, magnet_id, step_id, purpose, status, anchor_at,
                             due_at, attempts, message_id, created_at)
SELECT s.id, :magnet, (CAST(:steps AS text[]))[k], 'drip', 'pending', s.created_at,
       s.created_at, 0, '<d' || s.id || '.' || k || '@bench.example>', s.created_at
FROM subscriber s, generate_series(1, 4) AS k WHERE s.email LIKE 'd%'
"""
# ...and their sends recorded, as delivery does (one row each; the triggers fire per row).
DAY_SENDS = """
UPDATE scheduled_email SET status = 'sent', sent_at = now(), attempts = 1
WHERE message_id LIKE '<d%' AND status = 'pending'
"""


class Filled:
    """One database of `rows` subscribers and the figures' times on it."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.url = create_scratch_database()
        self.app = create_app(
            {
                "DATABASE_URL": self.url,
                "SECRET_KEY": SECRET_KEY,
                "INSTANCE_PATH": tempfile.mkdtemp(prefix="bench-dashboard-"),
                "ADMIN_PASSWORD": "bench-admin-password-long-enough",
            }
        )

    def fill(self) -> float:
        """Fill at 0012, then upgrade (the backfill); returns the upgrade's seconds."""
        with self.app.app_context():
            directory = self.app.extensions["migrate"].directory
            upgrade(directory=directory, revision="0012")
            ctx = for_app(self.app)
            steps = [step.id for step in ctx.content.steps][:4]
            steps += [steps[-1]] * (4 - len(steps))
            with db.engine.begin() as conn:
                for statement in FILL.strip().split(";\n"):
                    conn.execute(
                        text(statement),
                        {"rows": self.rows, "magnet": ctx.magnet_id, "steps": steps},
                    )
            db.session.remove()
            began = time.perf_counter()
            upgrade(directory=directory)
            backfilled = time.perf_counter() - began
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
        return backfilled

    def day_of_events(self, triggers: bool) -> tuple[float, float]:
        """A day's signups (1/60 of the list, as the fill spreads it over 60 days) and their
        four sends, through the triggers or with them off (rolled back); seconds of each."""
        day = self.rows // 60
        with self.app.app_context(), db.engine.connect() as conn:
            if not triggers:
                conn.execute(text("SET session_replication_role = replica"))
            magnet = for_app(self.app).magnet_id
            steps = [step.id for step in for_app(self.app).content.steps][:4]
            steps += [steps[-1]] * (4 - len(steps))
            params = {"rows": day, "magnet": magnet, "steps": steps, "base": self.rows + 1}
            began = time.perf_counter()
            for statement in DAY_SIGNUPS.strip().split(";\n"):
                conn.execute(text(statement), params)
            signed = time.perf_counter()
            conn.execute(text(DAY_SENDS), params)
            sent = time.perf_counter()
            if triggers:
                conn.commit()
            else:
                conn.rollback()
        return signed - began, sent - signed

    def fold(self) -> tuple[int, float]:
        with self.app.app_context():
            began = time.perf_counter()
            moved = rollup.fold(utcnow())
            return moved, time.perf_counter() - began

    def figures(self) -> dict[str, Callable[[], object]]:
        ctx = for_app(self.app)
        sequence, now = ctx.content, utcnow()
        return {
            "signups per day": lambda: stats.signups_per_day(now),
            "funnel": lambda: stats.funnel(sequence, False),
            "step figures": lambda: stats.step_figures(sequence),
            "clicks per step": lambda: clicks.per_step(None),
            "time to inbox": lambda: stats.time_to_inbox(now, sequence),
            "magnet list": lambda: all_magnets(),
            "oldest due unsent": lambda: stats.oldest_due_unsent(now),
        }

    def time_once(self) -> dict[str, float]:
        """Milliseconds of each figure, each on a fresh connection (the pool emptied)."""
        took: dict[str, float] = {}
        with self.app.app_context():
            for name, figure in self.figures().items():
                db.session.remove()
                db.engine.dispose()
                db.session.execute(text("SELECT 1"))  # the connection, not the figure
                began = time.perf_counter()
                figure()
                took[name] = (time.perf_counter() - began) * 1000
        took["page"] = sum(took.values())
        return took

    def drop(self) -> None:
        with self.app.app_context():
            db.engine.dispose()
        drop_scratch_database(self.url)


def events(filled: Filled) -> None:
    """A day of events with and without the triggers, the page with them unfolded, the fold."""
    day = filled.rows // 60
    bare = filled.day_of_events(triggers=False)
    kept = filled.day_of_events(triggers=True)
    for what, i, rows in (("signups", 0, day), ("sends", 1, 4 * day)):
        print(
            f"  a day's {what} ({rows:,}): {kept[i] * 1e6 / rows:.0f} us each with the "
            f"triggers, {bare[i] * 1e6 / rows:.0f} us without ({kept[i] / bare[i]:.2f}x)"
        )
    unfolded = statistics.median(filled.time_once()["page"] for _ in range(ROUNDS))
    print(f"  page with that day's deltas unfolded: {unfolded:.1f} ms")
    moved, took = filled.fold()
    print(f"  fold of that day: {moved:,} deltas in {took * 1000:.0f} ms")


def main() -> None:
    header("bench/dashboard (PostgreSQL; each figure on a fresh connection, median)")
    medians: dict[int, dict[str, float]] = {}
    for rows in SIZES:
        filled = Filled(rows)
        try:
            began = time.perf_counter()
            backfill = filled.fill()
            print(f"{rows:,} subscribers filled in {time.perf_counter() - began:.0f} s")
            print(f"  upgrade to 0013 (backfill of the figures): {backfill:.1f} s")
            runs = [filled.time_once() for _ in range(ROUNDS)]
            medians[rows] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            for name, ms in medians[rows].items():
                print(f"  {name:20s} {ms:8.1f} ms")
            events(filled)
        finally:
            filled.drop()
    small, large = min(SIZES), max(SIZES)
    page = medians[large]["page"]
    met = "met" if page < 300 else "NOT met"
    print(f"page at {large:,}: {page:.0f} ms  (goal < 300 ms: {met})")
    if small != large:
        ratio = page / medians[small]["page"]
        print(f"ratio {large:,} / {small:,}: {ratio:.2f}x  ({verdict(ratio, 2.0, False)})")


if __name__ == "__main__":
    main()

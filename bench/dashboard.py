"""bench/dashboard: the owner's dashboard figures and a broadcast's page on PostgreSQL
filled with 100k and 1M subscribers (four sent drip emails each, some bounced, complained,
withdrawn; a broadcast to all of them, 95% sent and 5% still open, with human clicks,
scanner bursts and HEAD checks on its links; clicks on the guide), each figure timed on a
fresh connection (median of ROUNDS), and each page's sum; prints the 1M times and the
1M / 100k ratios. Goal: each page < 300 ms at 1M and <= 2x from 100k.

The figures are kept by triggers (migrations 0013 and 0017): the fill is written at
revision 0012 and the upgrade backfills them (timed). Then a day of new events (1/60 of the
list signing up, four sends each; the broadcast's open rows sent; a click each for 1/60 of
the list) goes through the triggers, timed against the same statements with the triggers
off (session_replication_role), the pages are timed with that day unfolded (its sends fall
in EMAIL_MIN_GAP before now: the gap warning's range), and the fold of that day is timed:
what the figures cost elsewhere is printed, not hidden.

Run: .venv/bin/python -m bench.dashboard   (BENCH_DASHBOARD_SIZES=100000,1000000;
BENCH_DASHBOARD_KEEP=1 leaves the largest database in place, for EXPLAIN by hand)
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable

from flask_migrate import upgrade
from sqlalchemy import event, select, text

from bench.common import SECRET_KEY, create_scratch_database, drop_scratch_database, header, verdict
from service import create_app
from service.core.clock import utcnow
from service.core.extensions import db
from service.core.models import Broadcast
from service.insights import broadcast_figures, clicks, rollup, stats
from service.people.enrolments import all_magnets
from service.sending import broadcast_gap
from service.sending.broadcast_progress import progress
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
UPDATE subscriber SET unsubscribed_at = updated_at WHERE status = 'unsubscribed';
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
FROM subscriber WHERE status = 'unsubscribed';
INSERT INTO broadcast (subject, body_md, audience, status, recipients, created_by, created_at,
                       updated_at, started_at)
VALUES ('News', '# News', '{}', 'sending', :rows, 'bench', now() - interval '3 days', now(),
        now() - interval '3 days');
INSERT INTO broadcast (subject, body_md, audience, status, created_by, created_at, updated_at)
VALUES ('Next', '# Next', '{}', 'draft', 'bench', now(), now());
INSERT INTO scheduled_email (subscriber_id, broadcast_id, step_id, purpose, status, anchor_at,
                             due_at, attempts, message_id, sent_at, created_at)
SELECT s.id, b.id, 'broadcast-' || b.id, 'broadcast', v.status, b.started_at, b.started_at,
       1, '<b' || s.id || '@bench.example>',
       CASE WHEN v.status = 'sent' THEN b.started_at + (s.id % 3600) * interval '1 second' END,
       b.started_at
FROM subscriber s CROSS JOIN broadcast b
CROSS JOIN LATERAL (SELECT CASE WHEN s.id % 20 = 0 THEN 'pending'
                                WHEN s.id % 997 = 0 THEN 'failed'
                                WHEN s.id % 499 = 0 THEN 'cancelled' ELSE 'sent' END) v(status)
WHERE b.subject = 'News';
INSERT INTO click (email_id, subscriber_id, step_id, url, at, automated)
SELECT e.id, e.subscriber_id, e.step_id, l.url, e.sent_at + l.after * interval '1 second',
       l.automated
FROM scheduled_email e JOIN (VALUES
    (10, 1, 'https://news.example.org/a', 600.0, NULL),
    (30, 1, 'https://news.example.org/b', 900.0, NULL),
    (100, 7, 'https://news.example.org/a', 5.0, 'burst'),
    (100, 7, 'https://news.example.org/b', 5.5, 'burst'),
    (100, 7, 'https://news.example.org/c', 6.0, 'burst'),
    (200, 9, 'https://news.example.org/a', 3.0, 'head')
) AS l(m, r, url, after, automated) ON e.subscriber_id % l.m = l.r
WHERE e.purpose = 'broadcast' AND e.status = 'sent';
INSERT INTO click (email_id, subscriber_id, step_id, url, at)
SELECT id, subscriber_id, step_id, 'https://blog.example.org/post', sent_at + interval '1 hour'
FROM scheduled_email WHERE purpose = 'drip' AND step_id = (CAST(:steps AS text[]))[1]
AND subscriber_id % 20 = 3
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
# ...the broadcast's open rows sent, as delivery records them...
DAY_BROADCAST = """
UPDATE scheduled_email SET status = 'sent', sent_at = now(), attempts = 1
WHERE broadcast_id = :broadcast AND status IN ('pending', 'sending')
"""
# ...and a click each for 1/60 of its recipients, as the redirect writes them.
DAY_CLICKS = """
INSERT INTO click (email_id, subscriber_id, step_id, magnet_id, broadcast_id, url, at)
SELECT id, subscriber_id, step_id, magnet_id, broadcast_id, 'https://news.example.org/c', now()
FROM scheduled_email WHERE broadcast_id = :broadcast AND status = 'sent'
AND subscriber_id % 60 = 2
"""
DASHBOARD = (
    "signups per day",
    "funnel",
    "step figures",
    "clicks per step",
    "time to inbox",
    "magnet list",
    "oldest due unsent",
)
BROADCAST_PAGE = ("broadcast progress", "broadcast figures", "gap wait (sending)")
# A draft's review page instead says who would wait for EMAIL_MIN_GAP: a count over the
# emails sent or due in the gap before its start (an index range), not over the list.
REVIEW_PAGE = ("gap warning (draft)",)
PAGES = {"dashboard": DASHBOARD, "broadcast page": BROADCAST_PAGE, "review page": REVIEW_PAGE}


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

    def day_of_events(self, triggers: bool) -> list[tuple[str, int, float]]:
        """A day's signups (1/60 of the list, as the fill spreads it over 60 days), their
        four sends, the broadcast's open rows sent and 1/60 of its recipients clicking,
        through the triggers or with them off (rolled back); (what, rows, seconds) of each."""
        day = self.rows // 60
        with self.app.app_context(), db.engine.connect() as conn:
            if not triggers:
                conn.execute(text("SET session_replication_role = replica"))
            magnet = for_app(self.app).magnet_id
            steps = [step.id for step in for_app(self.app).content.steps][:4]
            steps += [steps[-1]] * (4 - len(steps))
            broadcast = conn.scalar(text("SELECT id FROM broadcast WHERE subject = 'News'"))
            params = {
                "rows": day,
                "magnet": magnet,
                "steps": steps,
                "base": self.rows + 1,
                "broadcast": broadcast,
            }
            took = []
            began = time.perf_counter()
            for statement in DAY_SIGNUPS.strip().split(";\n"):
                conn.execute(text(statement), params)
            took.append(("signups", day, time.perf_counter() - began))
            for what, statement in (
                ("drip sends", DAY_SENDS),
                ("broadcast sends", DAY_BROADCAST),
                ("clicks", DAY_CLICKS),
            ):
                began = time.perf_counter()
                rows = conn.execute(text(statement), params).rowcount
                took.append((what, rows, time.perf_counter() - began))
            if triggers:
                conn.commit()
            else:
                conn.rollback()
        return took

    def fold(self) -> tuple[int, float]:
        with self.app.app_context():
            began = time.perf_counter()
            moved = rollup.fold(utcnow())
            return moved, time.perf_counter() - began

    def figures(self) -> dict[str, Callable[[], object]]:
        ctx = for_app(self.app)
        sequence, now = ctx.content, utcnow()
        sent = db.session.scalars(select(Broadcast).where(Broadcast.subject == "News")).one()
        draft = db.session.scalars(select(Broadcast).where(Broadcast.subject == "Next")).one()
        return {
            "signups per day": lambda: stats.signups_per_day(now),
            "funnel": lambda: stats.funnel(sequence, False),
            "step figures": lambda: stats.step_figures(sequence),
            "clicks per step": lambda: clicks.per_step(None),
            "time to inbox": lambda: stats.time_to_inbox(now, sequence),
            "magnet list": lambda: all_magnets(),
            "oldest due unsent": lambda: stats.oldest_due_unsent(now),
            "broadcast progress": lambda: progress(sent.id, now),
            "broadcast figures": lambda: broadcast_figures.figures(sent.id),
            "gap wait (sending)": lambda: broadcast_gap.note(ctx, sent),
            "gap warning (draft)": lambda: broadcast_gap.note(ctx, draft),
        }

    def time_once(self) -> dict[str, float]:
        """Milliseconds of each figure, each on a fresh connection (the pool emptied), and
        of each page (its figures' sum)."""
        took: dict[str, float] = {}
        with self.app.app_context():
            for name, figure in self.figures().items():
                db.session.remove()
                db.engine.dispose()
                db.session.execute(text("SELECT 1"))  # the connection, not the figure
                began = time.perf_counter()
                figure()
                took[name] = (time.perf_counter() - began) * 1000
        for page, names in PAGES.items():
            took[page] = sum(took[name] for name in names)
        return took

    def gap_plan(self) -> str:
        """EXPLAIN (ANALYZE, BUFFERS) of the gap warning's statement, as it was sent."""
        sent: list[tuple[str, dict]] = []

        def note(conn, cursor, statement, parameters, context, executemany):
            if "union" in statement.lower():
                sent.append((statement, dict(parameters)))

        with self.app.app_context():
            self.figures()  # the rows it reads, looked up first
            event.listen(db.engine, "before_cursor_execute", note)
            try:
                self.figures()["gap warning (draft)"]()
            finally:
                event.remove(db.engine, "before_cursor_execute", note)
            with db.engine.connect() as conn:
                statement, parameters = sent[0]
                explain = "EXPLAIN (ANALYZE, BUFFERS) " + statement
                lines = ["    " + row[0] for row in conn.exec_driver_sql(explain, parameters)]
            db.session.remove()
        return "\n".join(lines)

    def drop(self) -> None:
        with self.app.app_context():
            db.engine.dispose()
        drop_scratch_database(self.url)


def events(filled: Filled) -> None:
    """A day of events with and without the triggers, the pages with them unfolded, the fold."""
    bare = filled.day_of_events(triggers=False)
    kept = filled.day_of_events(triggers=True)
    for (what, rows, with_), (_, _, without) in zip(kept, bare, strict=True):
        print(
            f"  a day's {what} ({rows:,}): {with_ * 1e6 / max(rows, 1):.0f} us each with the "
            f"triggers, {without * 1e6 / max(rows, 1):.0f} us without ({with_ / without:.2f}x)"
        )
    runs = [filled.time_once() for _ in range(ROUNDS)]
    for name in PAGES:
        unfolded = statistics.median(run[name] for run in runs)
        print(f"  {name} with that day's deltas unfolded: {unfolded:.1f} ms")
    moved, took = filled.fold()
    print(f"  fold of that day: {moved:,} deltas in {took * 1000:.0f} ms")
    print("  the gap warning's plan, that day's sends in its range:")
    print(filled.gap_plan())


def main() -> None:
    header("bench/dashboard (PostgreSQL; each figure on a fresh connection, median)")
    medians: dict[int, dict[str, float]] = {}
    for rows in SIZES:
        filled = Filled(rows)
        try:
            began = time.perf_counter()
            backfill = filled.fill()
            print(f"{rows:,} subscribers filled in {time.perf_counter() - began:.0f} s")
            print(f"  upgrade to head (backfills of the figures): {backfill:.1f} s")
            runs = [filled.time_once() for _ in range(ROUNDS)]
            medians[rows] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            for name, ms in medians[rows].items():
                print(f"  {name:20s} {ms:8.1f} ms")
            events(filled)
        finally:
            if os.environ.get("BENCH_DASHBOARD_KEEP") and rows == max(SIZES):
                print(f"  kept for a look: {filled.url}")  # the caller drops it
            else:
                filled.drop()
    small, large = min(SIZES), max(SIZES)
    for page in PAGES:
        ms = medians[large][page]
        met = "met" if ms < 300 else "NOT met"
        print(f"{page} at {large:,}: {ms:.0f} ms  (goal < 300 ms: {met})")
        if small != large:
            ratio = ms / medians[small][page]
            print(f"  ratio {large:,} / {small:,}: {ratio:.2f}x  ({verdict(ratio, 2.0, False)})")


if __name__ == "__main__":
    main()

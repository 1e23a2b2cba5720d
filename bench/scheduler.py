"""bench/scheduler: one scheduler claim (service.dispatch.claim_due) of a batch of 100 due rows
among 10,000 and among 1,000,000 scheduled rows, 1% due, in two databases measured in
alternating rounds; warm, and cold: the table's pages evicted from PostgreSQL's shared
buffers (by reading a larger table into them) and from the OS page cache (fadvise on the
table's files, where the data directory is on this machine) before each cold claim.

Each round claims other rows: the claimed ones are marked sent and as many others become
due, so 1% stays due. The plans printed are EXPLAIN (ANALYZE, BUFFERS) of the very
statements claim_due issues (captured as they are sent: same predicates, same limit), the
hand-off UPDATE included (its index writes were most of a cold claim before migration 0015),
rolled back; and how many of the table's updates were heap-only (HOT).

Run: .venv/bin/python -m bench.scheduler   (PostgreSQL from BENCH_DATABASE_URL, default the
local server; the benchmark makes and drops its own databases)
"""

from __future__ import annotations

import os
import re
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from flask_migrate import upgrade
from sqlalchemy import event, text

from bench.common import (
    SECRET_KEY,
    create_scratch_database,
    drop_scratch_database,
    fail,
    header,
    verdict,
)
from service import create_app
from service.core.clock import utcnow
from service.core.extensions import db
from service.sending.context import for_app
from service.sending.dispatch import claim_due

SIZES = (10_000, 1_000_000)
BATCH = 100
WARM_ROUNDS = int(os.environ.get("BENCH_WARM_ROUNDS", "7"))
COLD_ROUNDS = int(os.environ.get("BENCH_COLD_ROUNDS", "3"))
GOAL = 2
FILL = """
INSERT INTO subscriber (email, email_key, status, created_at, updated_at, guide_downloads,
                        token_key)
SELECT 's' || n || '@example.com', 's' || n || '@example.com', 'active', now(), now(), 0,
       md5(random()::text)
FROM generate_series(1, :rows) AS n;
INSERT INTO scheduled_email (subscriber_id, step_id, purpose, status, anchor_at, due_at,
                             attempts, message_id, created_at)
SELECT n, 'knees-over-toes', 'drip', 'pending', now(),
       CASE WHEN n % 100 = 0 THEN now() - interval '1 minute' ELSE now() + interval '2 days' END,
       0, '<' || n || '@bench.example>', now()
FROM generate_series(1, :rows) AS n;
CREATE EXTENSION IF NOT EXISTS pg_prewarm;
"""
# Rows of ~1.8 kB, 4 to a page, as many pages as 1.3 times the shared buffers.
JUNK = """
CREATE UNLOGGED TABLE bench_junk AS
SELECT repeat('x', 1800) AS filler
FROM generate_series(1, (SELECT setting::bigint * 13 / 10 * 4 FROM pg_settings
                         WHERE name = 'shared_buffers'))
"""
RELATION_FILES = """
SELECT pg_relation_filepath(c.oid) FROM pg_class c
WHERE c.oid = 'scheduled_email'::regclass
   OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = 'scheduled_email'::regclass)
"""
HOT = "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'scheduled_email'"
REFRESH = """
UPDATE scheduled_email SET status = 'sent', queued_at = NULL WHERE id = ANY(:ids);
UPDATE scheduled_email SET due_at = now() - interval '1 minute'
WHERE id IN (SELECT id FROM scheduled_email WHERE status = 'pending' AND due_at > now()
             ORDER BY id LIMIT :count);
"""


class Table:
    """One database of `rows` scheduled rows and what was measured on it."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.url = create_scratch_database()
        self.app = create_app(
            {
                "DATABASE_URL": self.url,
                "SECRET_KEY": SECRET_KEY,
                "INSTANCE_PATH": tempfile.mkdtemp(prefix="bench-"),
            }
        )
        self.warm: list[float] = []
        self.cold: list[float] = []
        self.claimed: set[int] = set()
        self.statements: list[tuple[str, dict]] = []

    def fill(self) -> None:
        with self.app.app_context():
            upgrade(directory=self.app.extensions["migrate"].directory)
            with db.engine.begin() as conn:
                for statement in FILL.strip().split(";\n"):
                    conn.execute(text(statement), {"rows": self.rows})
                conn.execute(text(JUNK))
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))

    def claim(self) -> float:
        """Milliseconds of one claim_due; the rows it claimed are then sent and as many
        others become due."""
        with self.app.app_context(), capture(self.statements, first=not self.statements):
            began = time.perf_counter()
            ids = claim_due(for_app(self.app), utcnow(), limit=BATCH)
            took = (time.perf_counter() - began) * 1000
            if len(ids) != BATCH or self.claimed.intersection(ids):
                fail(f"a claim among {self.rows:,} rows took {len(ids)} rows, or some again")
            self.claimed.update(ids)
            for statement in REFRESH.strip().split(";\n"):
                db.session.execute(text(statement), {"ids": ids, "count": len(ids)})
            db.session.commit()
        return took

    def evict(self) -> str:
        """Push the table out of shared buffers and, where its files are here, out of the
        OS page cache; a new connection. Says what was done."""
        with self.app.app_context():
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("CHECKPOINT"))  # clean pages: the OS may then drop them
                conn.execute(text("SELECT pg_prewarm('bench_junk', 'buffer')"))
                data = Path(conn.execute(text("SHOW data_directory")).scalar_one())
                files = [data / path for path in conn.execute(text(RELATION_FILES)).scalars()]
            db.engine.dispose()
        dropped = 0
        for base in files:  # the main fork, its 1 GB segments, its free space and visibility maps
            forks = [base, *base.parent.glob(f"{base.name}.*"), *base.parent.glob(f"{base.name}_*")]
            for path in forks:
                try:
                    fd = os.open(path, os.O_RDONLY)
                except OSError:
                    continue
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                os.close(fd)
                dropped += 1
        if dropped:
            return f"shared buffers and OS page cache ({dropped} files) evicted"
        return "shared buffers evicted; OS page cache NOT dropped (data directory not here)"

    def plan(self) -> str:
        """EXPLAIN (ANALYZE, BUFFERS) of claim_due's statements, rolled back."""
        lines = []
        with self.app.app_context():
            with db.engine.connect() as conn:
                for statement, parameters in self.statements:
                    lines.append("  " + shorten(" ".join(statement.split())))
                    explain = "EXPLAIN (ANALYZE, BUFFERS) " + statement
                    rows = conn.exec_driver_sql(explain, parameters)
                    lines += ["    " + shorten(row[0]) for row in rows]
                conn.rollback()
            db.engine.dispose()
        return "\n".join(lines)

    def hot_updates(self) -> str:
        with self.app.app_context():
            updates, hot = db.session.execute(text(HOT)).one()
            db.session.rollback()
        return f"{hot:,} of {updates:,} updates of scheduled_email heap-only (HOT)"

    def drop(self) -> None:
        with self.app.app_context():
            db.engine.dispose()
        drop_scratch_database(self.url)


def shorten(line: str) -> str:
    """The hand-off's list of 100 ids, as a statement and as a plan's array, in brief."""
    line = re.sub(r"(%\(id_1_1\)s::INTEGER)(, %\(id_1_\d+\)s::INTEGER)+", r"\1, ...", line)
    return re.sub(r"\{(\d+,\d+,\d+),[\d,]+\}", r"{\1,...}", line)


@contextmanager
def capture(into: list[tuple[str, dict]], first: bool):
    """On the first claim, note the SELECT ... FOR UPDATE statements and the hand-off UPDATE
    sent, with their parameters (later claims run without the listener)."""

    def note(conn, cursor, statement, parameters, context, executemany):
        if "FOR UPDATE" in statement or statement.startswith(
            "UPDATE scheduled_email SET queued_at"
        ):
            into.append((statement, dict(parameters)))

    if not first:
        yield
        return
    engine = db.engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", note)


def main() -> None:
    tables = [Table(rows) for rows in SIZES]
    try:
        for table in tables:
            table.fill()
        header("bench/scheduler (PostgreSQL; claim_due, batch of 100, 1% due)")
        for table in tables:
            table.claim()  # first claim: connections made, statements noted
        for _ in range(WARM_ROUNDS):
            for table in tables:
                table.warm.append(table.claim())
        warm_plan = tables[-1].plan()
        evicted = ""
        for _ in range(COLD_ROUNDS):
            for table in tables:
                evicted = table.evict()
                table.cold.append(table.claim())
        tables[-1].evict()
        report(tables, evicted, warm_plan, tables[-1].plan())
    finally:
        for table in tables:
            table.drop()


def report(tables: list[Table], evicted: str, warm_plan: str, cold_plan: str) -> None:
    small, large = tables
    for table in tables:
        print(
            f"claim of {BATCH} due among {table.rows:>9,} rows: "
            f"warm {statistics.median(table.warm):6.1f} ms (median of {len(table.warm)}), "
            f"cold {statistics.median(table.cold):6.1f} ms (median of {len(table.cold)})"
        )
    for kind in ("warm", "cold"):
        ratio = statistics.median(getattr(large, kind)) / statistics.median(getattr(small, kind))
        print(f"ratio 1M / 10k, {kind}: {ratio:.2f}x  ({verdict(ratio, GOAL, at_least=False)})")
    print(f"cold: {evicted}")
    print(f"among {large.rows:,} rows: {large.hot_updates()} (the claims' and the refreshes')")
    print(f"plan of claim_due's statements among {large.rows:,} rows, warm:\n{warm_plan}")
    print(f"the same, cold:\n{cold_plan}")
    reads = sum(int(n) for n in re.findall(r"\bread=(\d+)", cold_plan))
    if not reads:
        fail("the cold plan read no page from outside shared buffers: the cache was not cold")


if __name__ == "__main__":
    main()

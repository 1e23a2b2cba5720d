"""bench/scheduler: one scheduler claim over 10,000 and 1,000,000 scheduled rows, 1% due.

Run: .venv/bin/python -m bench.scheduler   (PostgreSQL from BENCH_DATABASE_URL, default the
local server; the benchmark makes and drops its own database)
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

from sqlalchemy import text

from bench.common import create_scratch_database, drop_scratch_database, header, verdict
from service.core.clock import utcnow
from service.core.extensions import db
from service.sending.context import for_app
from service.sending.dispatch import claim_due

BASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
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
ANALYZE;
"""


def measure(app, rows: int, batch: int, repeats: int = 5) -> tuple[float, str]:
    """Median ms of one claim of `batch` due rows (the same work whatever the table size)."""
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text("TRUNCATE subscriber, scheduled_email RESTART IDENTITY CASCADE"))
            for statement in FILL.strip().split(";\n"):
                if statement.strip():
                    conn.execute(text(statement), {"rows": rows})
        times = []
        ctx = for_app(app)
        for _ in range(repeats):
            began = time.perf_counter()
            ids = claim_due(ctx, utcnow(), limit=batch)
            times.append((time.perf_counter() - began) * 1000)
            db.session.execute(
                text("UPDATE scheduled_email SET queued_at = NULL WHERE id = ANY(:ids)"),
                {"ids": ids},
            )
            db.session.commit()
        assert len(ids) == min(batch, rows // 100), len(ids)
        plan = db.session.execute(
            text(
                "EXPLAIN SELECT id FROM scheduled_email WHERE status = 'pending'"
                " AND due_at <= now() AND queued_at IS NULL ORDER BY due_at LIMIT 1000"
                " FOR UPDATE SKIP LOCKED"
            )
        ).scalars()
        return statistics.median(times), "\n".join("    " + line for line in plan)


def main() -> None:
    from flask_migrate import upgrade

    from service import create_app

    database_url = create_scratch_database()
    try:
        app = create_app(
            {
                "DATABASE_URL": database_url,
                "SECRET_KEY": "bench-key-Hq6Vt2Mx9Rz4Kw8Lp3Nb7Js5Df",
                "INSTANCE_PATH": tempfile.mkdtemp(prefix="bench-"),
            }
        )
        with app.app_context():
            upgrade(directory=app.extensions["migrate"].directory)
        header("bench/scheduler (PostgreSQL)")
        small, _ = measure(app, 10_000, batch=100)
        large, plan = measure(app, 1_000_000, batch=100, repeats=5)
        print(f"claim of a batch of 100 due among    10,000 rows: {small:7.1f} ms")
        print(f"claim of a batch of 100 due among 1,000,000 rows: {large:7.1f} ms")
        ratio = large / small
        print(f"ratio 1M / 10k: {ratio:.2f}x  ({verdict(ratio, 2, at_least=False)})")
        print("query plan of the claim:\n" + plan)
        with app.app_context():
            db.engine.dispose()
    finally:
        drop_scratch_database(database_url)


if __name__ == "__main__":
    main()

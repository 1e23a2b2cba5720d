"""bench/broadcast: one broadcast through two Celery worker processes (batch hand-offs,
claim, re-check, render in the `_base` layout, send, record) against bench/delivery's bare
render+send loop run in the same two processes at once, to the Python SMTP sink
(bench/sink.py, aiosmtpd: no C sink such as Postfix's smtp-sink is installed here).

Prints the recipients/s of each and the ratio, the time to materialise the recipients, the
workers' peak RSS and the database's growth per 100k recipients; fails (exit 1) unless the
sink's Message-IDs are exactly the recipients table's: none missing, none twice.

Run: BENCH_RECIPIENTS=20000 .venv/bin/python -m bench.broadcast   (default 100,000)
     (PostgreSQL and Redis on this machine)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from celery import Celery
from flask_migrate import upgrade
from sqlalchemy import insert, select, text

from bench.common import (
    SECRET_KEY,
    create_scratch_database,
    drop_scratch_database,
    fail,
    free_port,
    header,
    private_redis_db,
    verdict,
    wait_for_port,
)
from bench.delivery import check_arrivals, start_worker, wait_for_worker
from bench.sink import arrived
from service import create_app
from service.core.broker import DISPATCH, celery_config
from service.core.extensions import db
from service.core.models import ScheduledEmail, Subscriber
from service.core.settings import settings_of
from service.sending import broadcasts
from service.sending.broadcast_audience import Audience
from service.sending.broadcast_progress import progress
from service.sending.context import for_app
from tests.broadcast_helpers import TEXT

COUNT = int(os.environ.get("BENCH_RECIPIENTS", "100000"))
WORKERS = 2
CAP = 3600
GOAL = 0.6


def fill(app, count: int) -> None:
    now = datetime.now(UTC) - timedelta(minutes=1)
    with app.app_context():
        for start in range(0, count, 10_000):
            db.session.execute(
                insert(Subscriber),
                [
                    {
                        "email": f"b{n}@example.com",
                        "email_key": f"b{n}@example.com",
                        "status": "active",
                        "first_name": "Sam",
                        "created_at": now,
                        "updated_at": now,
                        "guide_downloads": 0,
                    }
                    for n in range(start, min(count, start + 10_000))
                ],
            )
        db.session.commit()


def db_size(app) -> int:
    with app.app_context():
        size = db.session.scalar(text("SELECT pg_database_size(current_database())"))
        db.session.rollback()
        return int(size or 0)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def broadcast_round(app, producer: Celery, sink: Path) -> tuple[float, float, int]:
    """(recipients/s, seconds to materialise, bytes the database grew)."""
    before_size = db_size(app)
    before = arrived(sink)
    with app.app_context():
        ctx = for_app(app)
        broadcast = broadcasts.create(ctx, TEXT, Audience(), "bench")
        began = time.perf_counter()
        count = broadcasts.start(ctx, broadcast.id)
        materialised = time.perf_counter() - began
        if count != COUNT:
            fail(f"materialised {count} recipients of {COUNT}")
        broadcast_id = broadcast.id
        db.session.commit()
    began = time.perf_counter()
    with app.app_context():
        while time.perf_counter() - began < CAP:
            producer.send_task(DISPATCH)  # what beat does every DISPATCH_INTERVAL
            time.sleep(1.0)
            found = progress(broadcast_id, datetime.now(UTC))
            db.session.rollback()
            if found is not None and found.remaining == 0:
                break
        took = time.perf_counter() - began
        expected = set(
            db.session.scalars(
                select(ScheduledEmail.message_id).where(ScheduledEmail.broadcast_id == broadcast_id)
            )
        )
        db.session.rollback()
    if found is None or found.sent != COUNT:
        fail(f"broadcast round: {found} after {took:.0f} s: not every recipient was sent")
    check_arrivals(sink, before, expected, "broadcast round")
    return COUNT / took, materialised, db_size(app) - before_size


BARE = """
import sys
from pathlib import Path
import bench.delivery as delivery
from service import create_app
delivery.check_arrivals = lambda *args: None  # two loops at once: counted together after
print(delivery.bare_loop(create_app(), int(sys.argv[1]), Path(sys.argv[2])))
"""


def bare_round(env: dict, count: int, sink: Path) -> float:
    """bench/delivery's bare loop in two processes at once; their summed rate."""
    share = count // WORKERS
    before = sum(arrived(sink).values())
    began = time.perf_counter()
    loops = [
        subprocess.Popen(
            [sys.executable, "-c", BARE, str(share), str(sink)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(WORKERS)
    ]
    for loop in loops:
        if loop.wait() != 0:
            fail("a bare loop failed")
    took = time.perf_counter() - began
    got = sum(arrived(sink).values()) - before
    if got != share * WORKERS:
        fail(f"bare loops: {got} of {share * WORKERS} messages arrived")
    return share * WORKERS / took


def main() -> None:
    port = free_port()
    sink_log = Path(tempfile.mkdtemp(prefix="bench-broadcast-")) / "arrived.txt"
    sink = subprocess.Popen([sys.executable, "-m", "bench.sink", str(port), str(sink_log)])
    wait_for_port(port)
    database_url = create_scratch_database()
    workers: list[subprocess.Popen] = []
    try:
        with private_redis_db() as redis_url:
            env = {
                **os.environ,
                "DATABASE_URL": database_url,
                "REDIS_URL": redis_url,
                "SECRET_KEY": SECRET_KEY,
                "EMAIL_URL": f"smtp://127.0.0.1:{port}",
                "INSTANCE_PATH": tempfile.mkdtemp(),
                "DISPATCH_INTERVAL": "1",
                "LOG_FORMAT": "text",
            }
            app = create_app(env)
            with app.app_context():
                upgrade(directory=app.extensions["migrate"].directory)
                for_app(app)  # the default magnet's content, loaded on first use
            producer = Celery(set_as_current=False)
            producer.conf.update(celery_config(settings_of(app)))
            workers = [start_worker(env) for _ in range(WORKERS)]
            for worker in workers:
                wait_for_worker(producer, worker)
            fill(app, COUNT)
            bare_count = min(COUNT, 4000)
            bare_round(env, 100, sink_log)  # warm
            bare = bare_round(env, bare_count, sink_log)
            rate, materialised, growth = broadcast_round(app, producer, sink_log)
            rss = max(peak_rss_mb(w.pid) for w in workers)
            header(
                f"bench/broadcast ({COUNT} recipients, {WORKERS} Celery worker processes; "
                "PostgreSQL + Redis, Python SMTP sink in its own process)"
            )
            print(f"bare loop, {WORKERS} processes ({bare_count} emails): {bare:.0f} emails/s")
            print(f"broadcast, {WORKERS} workers: {rate:.0f} recipients/s")
            ratio = rate / bare
            print(f"ratio broadcast / bare loop: {ratio:.2f}  ({verdict(ratio, GOAL, True)})")
            per_100k = materialised * 100_000 / COUNT
            print(f"materialise {COUNT} recipients: {materialised:.2f} s ({per_100k:.2f} s/100k)")
            print(f"database growth: {growth * 100_000 / COUNT / 2**20:.1f} MB per 100k recipients")
            print(f"workers' peak RSS: {rss:.0f} MB")
            print(f"all {COUNT} recipients arrived once each: sink matches the recipients table")
            with app.app_context():
                db.engine.dispose()
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=30)
        sink.terminate()
        sink.wait(timeout=30)
        drop_scratch_database(database_url)


if __name__ == "__main__":
    main()

"""bench/delivery: 5,000 due emails through one Celery worker process (claim, re-check,
render, send, record) against the bare pipeline (same renderer, same SMTP client over one
reused connection; no database, no Celery), both to an SMTP server that discards.

Run: .venv/bin/python -m bench.delivery   (PostgreSQL and Redis on this machine)
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
from sqlalchemy import func, insert, select, text

from bench.common import create_scratch_database, drop_scratch_database, free_port, header, verdict
from service import create_app
from service.core.broker import DISPATCH, celery_config
from service.core.extensions import db
from service.core.models import ScheduledEmail, Subscriber
from service.core.settings import settings_of
from service.sending.compose import compose, render_for
from service.sending.context import for_app
from service.sending.message import new_message_id
from service.sending.transport import SmtpTransport

BASE_DB = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
COUNT = int(os.environ.get("BENCH_EMAILS", "5000"))
GOAL = 0.6


def fill(app, count: int) -> None:
    now = datetime.now(UTC) - timedelta(minutes=1)
    with app.app_context():
        db.session.execute(text("TRUNCATE subscriber, scheduled_email RESTART IDENTITY CASCADE"))
        db.session.execute(
            insert(Subscriber),
            [
                {
                    "email": f"d{n}@example.com",
                    "email_key": f"d{n}@example.com",
                    "status": "active",
                    "first_name": "Sam",
                    "created_at": now,
                    "updated_at": now,
                    "guide_downloads": 0,
                }
                for n in range(count)
            ],
        )
        ids = db.session.scalars(select(Subscriber.id)).all()
        db.session.execute(
            insert(ScheduledEmail),
            [
                {
                    "subscriber_id": i,
                    "step_id": "knees-over-toes",
                    "purpose": "drip",
                    "status": "pending",
                    "anchor_at": now,
                    "due_at": now,
                    "attempts": 0,
                    "created_at": now,
                    "message_id": new_message_id("x@bench.example"),
                }
                for i in ids
            ],
        )
        db.session.commit()


def bare_pipeline(app, count: int, smtp_url) -> float:
    """Render, build and send `count` messages in a loop: the ceiling for this machine."""
    with app.app_context():
        email = db.session.scalars(select(ScheduledEmail)).first()
        subscriber = db.session.get(Subscriber, email.subscriber_id)
        transport = SmtpTransport(smtp_url)
        ctx = for_app(app)
        began = time.perf_counter()
        for _ in range(count):
            rendered = render_for(ctx, email, subscriber)
            msg, sender, recipient = compose(ctx, email, subscriber, rendered)
            transport.send(msg, sender, recipient)
        took = time.perf_counter() - began
        transport.close()
        return count / took


def worker_pipeline(app, env: dict, count: int) -> tuple[float, float]:
    fill(app, count)
    worker = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "worker",
            "worker",
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "WARNING",
        ],
        env=env,
    )
    try:
        time.sleep(3)  # let it connect before the clock starts
        producer = Celery(set_as_current=False)
        producer.conf.update(celery_config(settings_of(app)))
        began = time.perf_counter()
        producer.send_task(DISPATCH)
        with app.app_context():
            sent = 0
            while sent < count and time.perf_counter() - began < 600:
                time.sleep(0.2)
                sent = (
                    db.session.scalar(select(func.count()).where(ScheduledEmail.status == "sent"))
                    or 0
                )
                db.session.rollback()
        took = time.perf_counter() - began
        rss = subprocess.run(
            ["ps", "-o", "rss=", "-p", str(worker.pid)], capture_output=True, text=True
        ).stdout.strip()
        return sent / took, int(rss or 0) / 1024
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def main() -> None:
    port = free_port()
    sink = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{port}",
            "-c",
            "aiosmtpd.handlers.Sink",
        ]
    )
    database_url = create_scratch_database()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS,
        "SECRET_KEY": "bench-key-Hq6Vt2Mx9Rz4Kw8Lp3Nb7Js5Df",
        "EMAIL_URL": f"smtp://127.0.0.1:{port}",
        "INSTANCE_PATH": tempfile.mkdtemp(),
    }
    try:
        import redis

        redis.Redis.from_url(REDIS).flushdb()
        app = create_app(env)
        with app.app_context():
            upgrade(directory=app.extensions["migrate"].directory)
        fill(app, 10)
        header(f"bench/delivery ({COUNT} emails, PostgreSQL + Redis, SMTP sink)")
        bare = bare_pipeline(app, COUNT, settings_of(app).email_url)
        ours, rss = worker_pipeline(app, env, COUNT)
        print(f"bare pipeline (render + MIME + SMTP, one connection): {bare:7.0f} emails/s")
        print(f"one Celery worker (claim, re-check, render, send, record): {ours:7.0f} emails/s")
        print(
            f"ratio worker / bare: {ours / bare:.2f}  ({verdict(ours / bare, GOAL, at_least=True)})"
        )
        print(f"worker RSS after the run: {rss:.0f} MB")
        with app.app_context():
            db.engine.dispose()
    finally:
        sink.terminate()
        drop_scratch_database(database_url)


if __name__ == "__main__":
    main()

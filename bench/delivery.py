"""bench/delivery: due emails through one Celery worker process (claim, re-check, render,
send, record) against the bare loop in one process too (the send path's renderer and MIME
writer, SMTP over one connection; no database, no Celery), in alternating rounds, all to an
SMTP server in a process of its own that notes each Message-ID.

Every round must deliver each of its messages exactly once: a missing, failed or repeated
email, or a worker round that does not finish within the cap, fails the run (exit 1)
instead of printing a rate.

Run: .venv/bin/python -m bench.delivery   (PostgreSQL and Redis on this machine)
"""

from __future__ import annotations

import os
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from celery import Celery
from flask_migrate import upgrade
from sqlalchemy import func, insert, select, text

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
from bench.sink import arrived
from service import create_app
from service.core.broker import DISPATCH, celery_config
from service.core.extensions import db
from service.core.models import EmailStatus, ScheduledEmail, Subscriber
from service.core.settings import settings_of
from service.sending.compose import compose, render_for
from service.sending.context import for_app
from service.sending.message import new_message_id

COUNT = int(os.environ.get("BENCH_EMAILS", "2000"))  # per round
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CAP = 600  # seconds a worker round may take
GOAL = 0.6
STEP = "knees-over-toes"


def fill(app, count: int) -> set[str]:
    """`count` subscribers with one email due each; returns their Message-IDs."""
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
        message_ids = [new_message_id(for_app(app).sender) for _ in ids]
        db.session.execute(
            insert(ScheduledEmail),
            [
                {
                    "subscriber_id": i,
                    "step_id": STEP,
                    "purpose": "drip",
                    "status": "pending",
                    "anchor_at": now,
                    "due_at": now,
                    "attempts": 0,
                    "created_at": now,
                    "message_id": message_id,
                }
                for i, message_id in zip(ids, message_ids, strict=True)
            ],
        )
        db.session.commit()
    return set(message_ids)


def bare_loop(app, count: int, sink: Path) -> float:
    """Render, compose and send `count` messages in a loop over one SMTP connection, through
    the send path's own renderer and MIME writer: the ceiling for this machine. Message-IDs
    are made before the clock starts, as the scheduler makes them."""
    with app.app_context():
        subscriber = db.session.scalars(select(Subscriber)).first()
        ctx = for_app(app)
        emails = [
            ScheduledEmail(purpose="drip", step_id=STEP, message_id=new_message_id(ctx.sender))
            for _ in range(count)
        ]
        url = ctx.settings.email_url
        before = arrived(sink)
        with smtplib.SMTP(url.host, url.port) as conn:
            began = time.perf_counter()
            for email in emails:
                rendered = render_for(ctx, email, subscriber)
                msg, envelope, recipient = compose(ctx, email, subscriber, rendered)
                conn.sendmail(envelope, [recipient], msg.as_bytes())
            took = time.perf_counter() - began
    check_arrivals(sink, before, {email.message_id for email in emails}, "bare loop")
    return count / took


def worker_round(app, producer: Celery, count: int, sink: Path) -> float:
    expected = fill(app, count)
    before = arrived(sink)
    began = time.perf_counter()
    producer.send_task(DISPATCH)
    this_step = ScheduledEmail.step_id == STEP  # not the next steps the worker schedules
    with app.app_context():
        done = 0
        while done < count and time.perf_counter() - began < CAP:
            time.sleep(0.2)
            closed = ScheduledEmail.status.not_in(EmailStatus.OPEN)
            done = db.session.scalar(select(func.count()).where(this_step, closed)) or 0
            db.session.rollback()
        took = time.perf_counter() - began
        statuses = dict(
            db.session.execute(
                select(ScheduledEmail.status, func.count())
                .where(this_step)
                .group_by(ScheduledEmail.status)
            ).all()
        )
        db.session.rollback()
    if statuses.get("sent", 0) != count:
        fail(
            f"worker round: {statuses} after {took:.0f} s (cap {CAP} s) of {count} emails: "
            "no rate is printed for a round that did not send them all"
        )
    check_arrivals(sink, before, expected, "worker round")
    return count / took


def check_arrivals(sink: Path, before, expected: set[str], what: str) -> None:
    new = arrived(sink) - before
    missing = expected - set(new)
    twice = {message_id: n for message_id, n in new.items() if n > 1}
    strangers = set(new) - expected
    if missing or twice or strangers:
        fail(
            f"{what}: {len(missing)} of {len(expected)} emails missing, {len(twice)} arrived "
            f"more than once, {len(strangers)} not sent by this round"
        )


def start_worker(env: dict) -> subprocess.Popen:
    return subprocess.Popen(
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


def wait_for_worker(producer: Celery, worker: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and worker.poll() is None:
        if producer.control.ping(timeout=1.0):
            return
    fail("the Celery worker did not answer a ping within 60 s")


def main() -> None:
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="bench-delivery-")) / "arrived.txt"
    sink = subprocess.Popen([sys.executable, "-m", "bench.sink", str(port), str(log)])
    wait_for_port(port)
    database_url = create_scratch_database()
    worker = None
    try:
        with private_redis_db() as redis_url:
            env = {
                **os.environ,
                "DATABASE_URL": database_url,
                "REDIS_URL": redis_url,
                "SECRET_KEY": SECRET_KEY,
                "EMAIL_URL": f"smtp://127.0.0.1:{port}",
                "INSTANCE_PATH": tempfile.mkdtemp(),
            }
            app = create_app(env)
            with app.app_context():
                upgrade(directory=app.extensions["migrate"].directory)
            producer = Celery(set_as_current=False)
            producer.conf.update(celery_config(settings_of(app)))
            worker = start_worker(env)
            wait_for_worker(producer, worker)
            with app.app_context():  # the default magnet's content, as the first start loads it
                for_app(app)
            fill(app, 10)
            bare_loop(app, 50, log)  # warm: templates compiled, shapes inlined
            run(app, producer, worker, log)
            with app.app_context():
                db.engine.dispose()
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        sink.terminate()
        sink.wait(timeout=30)
        drop_scratch_database(database_url)


def run(app, producer: Celery, worker: subprocess.Popen, log: Path) -> None:
    header(
        f"bench/delivery ({ROUNDS} alternating rounds of {COUNT} emails each; "
        "PostgreSQL + Redis, SMTP sink in its own process)"
    )
    bare, ours = [], []
    for _ in range(ROUNDS):
        bare.append(bare_loop(app, COUNT, log))
        ours.append(worker_round(app, producer, COUNT, log))
    rss = subprocess.run(
        ["ps", "-o", "rss=", "-p", str(worker.pid)], capture_output=True, text=True
    ).stdout.strip()
    ratio = statistics.median(o / b for o, b in zip(ours, bare, strict=True))

    def rates(values: list[float]) -> str:
        each = ", ".join(f"{value:.0f}" for value in values)
        return f"{statistics.median(values):5.0f} emails/s (rounds: {each})"

    print(f"bare loop (render + our MIME writer + SMTP, 1 process): {rates(bare)}")
    print(f"one Celery worker (claim, re-check, render, send, record): {rates(ours)}")
    print(f"all {2 * ROUNDS * COUNT} emails arrived once each; none failed")
    print(f"ratio worker / bare loop: {ratio:.2f}  ({verdict(ratio, GOAL, at_least=True)})")
    print(f"worker RSS after the run: {int(rss or 0) / 1024:.0f} MB")


if __name__ == "__main__":
    main()

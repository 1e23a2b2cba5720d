"""Every claimant at once on PostgreSQL: each due email nudged by several producers, scheduler
passes as Celery tasks and as `leadmagnet dispatch` processes, three workers. The passes' SKIP
LOCKED hand-off gives each row to one of them; the nudges do not, so only the claim stands
between the workers, the passes and a second send of the same email."""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import timedelta

import pytest
import redis
from celery import Celery
from sqlalchemy import insert, select

from service import create_app
from service.core.broker import DISPATCH, celery_config, nudge
from service.core.clock import utcnow
from service.core.extensions import db
from service.core.models import DeliveryAttempt, ScheduledEmail, Subscriber
from service.core.nudge_list import NUDGES
from service.core.settings import settings_of as app_settings
from service.sending.message import new_message_id
from tests.conftest import SECRET, make_app
from tests.procs import BIN, clean_env, start, stop, wait_until, worker_command

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]
DUE = 500
WORKERS = 3
PRODUCERS = 3  # as three web processes would, each nudges every row
PASSES = 2  # of each kind: Celery DISPATCH tasks and `leadmagnet dispatch` processes


def make_due_rows(app, count: int) -> set[str]:
    now = utcnow() - timedelta(minutes=1)
    with app.app_context():
        db.session.execute(
            insert(Subscriber),
            [
                {
                    "email": f"r{n}@example.com",
                    "email_key": f"r{n}@example.com",
                    "status": "active",
                    "created_at": now,
                    "updated_at": now,
                    "guide_downloads": 0,
                }
                for n in range(count)
            ],
        )
        ids = db.session.scalars(select(Subscriber.id)).all()
        rows = [
            {
                "subscriber_id": i,
                "step_id": "guide",
                "purpose": "drip",
                "status": "pending",
                "anchor_at": now,
                "due_at": now,
                "attempts": 0,
                "created_at": now,
                "message_id": new_message_id("x@insideoutstrength.example"),
            }
            for i in ids
        ]
        db.session.execute(insert(ScheduledEmail), rows)
        db.session.commit()
        return {r["message_id"] for r in rows}


def broker_idle(url: str) -> bool:
    """No nudge and no task waiting and none taken but unfinished: with late acks, a task
    leaves `unacked` only once it has run, so every send it made has arrived by then."""
    queue = redis.Redis.from_url(url)

    def waiting() -> int:
        return queue.llen(NUDGES) + queue.llen("celery") + queue.hlen("unacked")

    # Twice: the worker's nudge consumer takes ids from one list before it publishes them
    # to the other.
    if waiting():
        return False
    time.sleep(0.1)
    return waiting() == 0


def nudge_from_each_producer(settings: dict[str, str], ids: list[int]) -> None:
    """Each producer (a web app of its own, with its own broker connection) nudges every
    row, one row at a time from all of them: the nudges of one row follow each other in
    the queue, so idle workers take them together."""
    producers = [create_app(settings) for _ in range(PRODUCERS)]
    for email_id in ids:
        for app in producers:
            nudge(app, [email_id])


def test_each_email_is_sent_exactly_once(tmp_path, pg_database, redis_db, smtpd):
    settings = {
        "DATABASE_URL": pg_database,
        "REDIS_URL": redis_db,
        "EMAIL_URL": smtpd.url,
        "SECRET_KEY": SECRET,
        "INSTANCE_PATH": str(tmp_path / "instance"),
    }
    app = make_app(settings)
    expected = make_due_rows(app, DUE)
    with app.app_context():
        ids = db.session.scalars(select(ScheduledEmail.id).order_by(ScheduledEmail.id)).all()
    # As after a burst of signups the workers could not keep up with: every row nudged by
    # each producer, with the beat's scheduler passes queued among the nudges.
    half = len(ids) // 2
    nudge_from_each_producer(settings, ids[:half])
    producer = Celery(set_as_current=False)
    producer.conf.update(celery_config(app_settings(app)))
    for _ in range(PASSES):
        producer.send_task(DISPATCH)
    nudge_from_each_producer(settings, ids[half:])
    env = clean_env(**settings)
    procs = []
    began = time.monotonic()
    try:
        # Then the `leadmagnet dispatch` processes and the workers all start at once, the
        # dispatch processes first: the nudges now reach the workers through a Redis list,
        # not the Celery queue, so the queued DISPATCH tasks run the moment a worker is up
        # and, started before the processes, hand every row off before they look.
        dispatch = [str(BIN / "leadmagnet"), "dispatch"]
        inline = [
            start(dispatch, env, tmp_path, tmp_path / f"dispatch{n}.log") for n in range(PASSES)
        ]
        procs += inline
        for n in range(WORKERS):
            args = worker_command("-n", f"w{n}@%h", "--loglevel", "WARNING")
            procs.append(start(args, env, tmp_path, tmp_path / f"worker{n}.log"))
        for n, proc in enumerate(inline):
            assert proc.wait(timeout=120) == 0, (tmp_path / f"dispatch{n}.log").read_text()
        assert wait_until(lambda: broker_idle(redis_db), 120, 0.2), "the workers drained"
        took = time.monotonic() - began
    finally:
        for proc in procs:
            stop(proc)

    arrivals = Counter(r.message["Message-ID"] for r in smtpd.received)
    duplicates = {mid: n for mid, n in arrivals.items() if n > 1}
    said = [(tmp_path / f"dispatch{n}.log").read_text() for n in range(PASSES)]
    lost = [sum(int(n) for n in re.findall(r"(\d+) not-claimed", text)) for text in said]
    won = [sum(int(n) for n in re.findall(r"(\d+) sent", text)) for text in said]
    with app.app_context():
        records = Counter(
            db.session.scalars(
                select(DeliveryAttempt.message_id).where(DeliveryAttempt.outcome == "sent")
            )
        )
        statuses = Counter(db.session.scalars(select(ScheduledEmail.status)))
    print(
        f"\nrace: {DUE} due, {PRODUCERS * DUE} nudges, {PASSES} DISPATCH tasks, {PASSES} "
        f"`leadmagnet dispatch` processes (sent {won}, lost {lost} claims), {WORKERS} workers; "
        f"{len(smtpd.received)} received in {took:.1f}s, "
        f"{len(duplicates)} duplicates ({sum(duplicates.values()) - len(duplicates)} extra sends)"
    )
    assert not duplicates, f"{len(duplicates)} emails arrived more than once"
    assert sum(won) and sum(lost), "the dispatch processes both won and lost races"
    assert set(arrivals) == expected
    assert set(records) == expected and set(records.values()) == {1}, "recorded once each"
    assert statuses["sent"] == DUE

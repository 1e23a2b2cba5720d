"""Two scheduler passes and four workers racing over 2,000 due emails on PostgreSQL."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

import pytest
from celery import Celery
from sqlalchemy import insert, select

from service.core.broker import DISPATCH, celery_config
from service.core.clock import utcnow
from service.core.extensions import db
from service.core.models import ScheduledEmail, Subscriber
from service.sending.message import new_message_id
from service.sending.runtime import settings as app_settings
from tests.conftest import SECRET, make_app
from tests.procs import BIN, clean_env, start, stop, wait_until, worker_command

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]
DUE = 2000


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


def test_each_email_is_sent_exactly_once(tmp_path, pg_database, redis_db, smtpd):
    broker = redis_db
    settings = {
        "DATABASE_URL": pg_database,
        "REDIS_URL": broker,
        "EMAIL_URL": smtpd.url,
        "SECRET_KEY": SECRET,
        "INSTANCE_PATH": str(tmp_path / "instance"),
    }
    app = make_app(settings)
    expected = make_due_rows(app, DUE)
    env = clean_env(**settings)
    workers = [
        start(
            worker_command("-n", f"w{n}@%h", "--loglevel", "WARNING"),
            env,
            tmp_path,
            tmp_path / f"worker{n}.log",
        )
        for n in range(4)
    ]
    try:
        producer = Celery(set_as_current=False)
        producer.conf.update(celery_config(app_settings(app)))
        began = time.monotonic()
        for _ in range(2):  # two scheduler passes at once, as two beats would start them
            producer.send_task(DISPATCH)
        inline = [
            start(
                [str(BIN / "leadmagnet"), "dispatch"], env, tmp_path, tmp_path / f"dispatch{n}.log"
            )
            for n in range(2)
        ]
        for proc in inline:
            proc.wait(timeout=300)
            assert proc.returncode == 0
        wait_until(lambda: len(smtpd.received) >= DUE, 240, 0.5)
        time.sleep(1)  # anything sent twice would arrive now
        took = time.monotonic() - began
    finally:
        for proc in workers:
            stop(proc)
    ids = Counter(r.message["Message-ID"] for r in smtpd.received)
    duplicates = {mid: n for mid, n in ids.items() if n > 1}
    print(
        f"{DUE} due, {len(smtpd.received)} received in {took:.1f}s, duplicates: {len(duplicates)}"
    )
    assert duplicates == {}
    assert set(ids) == expected
    with app.app_context():
        guides = select(ScheduledEmail.status).where(ScheduledEmail.step_id == "guide")
        assert Counter(db.session.scalars(guides)) == {"sent": DUE}

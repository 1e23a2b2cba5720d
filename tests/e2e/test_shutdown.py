"""SIGTERM to a worker mid-batch: the send in hand finishes, the rest go back, exit 0."""

from __future__ import annotations

import signal
import time

import pytest
from sqlalchemy import select, update

from service.core.broker import DELIVER_BATCH, celery_config
from service.core.clock import utcnow
from service.core.extensions import db
from service.core.models import ScheduledEmail
from service.core.settings import settings_of as app_settings
from tests.conftest import SECRET, make_app
from tests.helpers import api_signup
from tests.procs import BIN, clean_env, start, stop, wait_until, worker_command

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


def test_sigterm_finishes_the_send_in_hand_and_leaves_the_rest_claimable(
    tmp_path, pg_database, redis_db, smtpd
):
    settings = {
        "DATABASE_URL": pg_database,
        "REDIS_URL": redis_db,
        "EMAIL_URL": smtpd.url,
        "SECRET_KEY": SECRET,
        "INSTANCE_PATH": str(tmp_path / "instance"),
    }
    app = make_app(settings)
    client = app.test_client()
    for n in range(5):
        api_signup(client, f"term{n}@example.com")
    with app.app_context():
        ids = list(db.session.scalars(select(ScheduledEmail.id).order_by(ScheduledEmail.id)))
        # As the dispatcher does when it hands a batch over.
        db.session.execute(update(ScheduledEmail).values(queued_at=utcnow()))
        db.session.commit()
    redis_lib = __import__("redis")
    redis_lib.Redis.from_url(settings["REDIS_URL"]).flushdb()  # drop the signup nudges
    smtpd.handler.hold()  # the first send waits inside DATA until the worker has the signal
    log = tmp_path / "worker.log"
    worker = start(
        worker_command("--loglevel", "INFO"),
        clean_env(**settings),
        tmp_path,
        log,
    )
    try:
        from celery import Celery

        producer = Celery(set_as_current=False)
        producer.conf.update(celery_config(app_settings(app)))
        producer.send_task(DELIVER_BATCH, args=[ids])
        assert smtpd.handler.waiting.wait(60), log.read_text()[-2000:]
        with app.app_context():
            statuses = [db.session.get(ScheduledEmail, i).status for i in ids]
            # The batch is claimed together (one statement); the first is inside DATA.
            assert statuses == ["sending"] * 5, "the batch claimed, the first in hand"
            db.session.rollback()
        worker.send_signal(signal.SIGTERM)
        began = time.monotonic()
        assert wait_until(lambda: "Warm shutdown" in log.read_text(), 30), "took the signal"
        smtpd.handler.release()
        worker.wait(timeout=60)
        print(f"worker exited {worker.returncode} {time.monotonic() - began:.1f}s after SIGTERM")
        assert worker.returncode == 0
    finally:
        smtpd.handler.release()
        stop(worker)
    assert [r.recipients for r in smtpd.received] == [["term0@example.com"]]
    with app.app_context():
        db.session.expire_all()
        rest = db.session.scalars(select(ScheduledEmail).where(ScheduledEmail.id.in_(ids[1:])))
        assert all(e.status == "pending" and e.queued_at is None for e in rest)
    dispatch = start(
        [str(BIN / "leadmagnet"), "dispatch"],
        clean_env(**settings),
        tmp_path,
        tmp_path / "dispatch.log",
    )
    assert dispatch.wait(timeout=60) == 0
    got = sorted(r.recipients[0] for r in smtpd.received)
    assert got == sorted(f"term{n}@example.com" for n in range(5)), "each once, none lost"

"""Faults with real processes: Redis down during signups, a worker killed mid-send, a worker
killed before it claims the batch handed to it."""

from __future__ import annotations

import signal
import time
from datetime import timedelta

import pytest
import time_machine
from celery import Celery
from sqlalchemy import select, text

from service.broker import DELIVER_BATCH, celery_config
from service.clock import utcnow
from service.dispatch import run_pass
from service.extensions import db
from service.models import ScheduledEmail
from service.runtime import settings as app_settings
from tests.conftest import SECRET, free_port, make_app
from tests.e2e.test_race import make_due_rows
from tests.e2e.test_serve import serve, stop_and_check_children
from tests.helpers import api_signup, dispatch_inline
from tests.procs import (
    BIN,
    Browser,
    PrivateRedis,
    clean_env,
    start,
    stop,
    wait_until,
    worker_command,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


def test_signups_while_redis_is_down_are_answered_and_delivered_when_it_returns(
    tmp_path, pg_database, smtpd
):
    redis = PrivateRedis(free_port(), tmp_path)
    redis.start()
    interval = 3
    settings = {
        "DATABASE_URL": pg_database,
        "REDIS_URL": redis.url,
        "EMAIL_URL": smtpd.url,
        "SECRET_KEY": SECRET,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DISPATCH_INTERVAL": str(interval),
    }
    make_app(settings)
    proc, base = serve(tmp_path, clean_env(**settings))
    try:
        browser = Browser(base)
        assert (
            browser.post_json(
                "/api/subscribe", {"email": "before@example.com", "consent": True}
            ).status
            == 202
        )
        assert smtpd.wait_for(1)

        redis.stop()
        answers, slowest = [], 0.0
        for n in range(10):
            began = time.monotonic()
            answer = browser.post_json(
                "/api/subscribe", {"email": f"down{n}@example.com", "consent": True}
            )
            slowest = max(slowest, time.monotonic() - began)
            answers.append(answer.status)
        assert answers == [202] * 10
        print(f"10 signups with Redis down, slowest answer {slowest:.2f}s")
        time.sleep(1)  # a real outage lasts a while: no sending can happen in it
        assert len(smtpd.received) == 1

        redis.start()
        back = time.monotonic()
        arrived = smtpd.wait_for(11, timeout=60)
        took = time.monotonic() - back
        print(
            f"all guides delivered {took:.1f}s after Redis returned (DISPATCH_INTERVAL={interval})"
        )
        assert sorted(r.recipients[0] for r in arrived[1:]) == sorted(
            f"down{n}@example.com" for n in range(10)
        )
    finally:
        stop_and_check_children(proc)
        redis.stop()


def test_a_worker_killed_mid_send_loses_no_email(tmp_path, pg_database, redis_db, smtpd):
    """SIGKILL while the SMTP server holds the message in DATA, unanswered: once the claim's
    lease has run out a pass sends it, once."""
    settings = {
        "DATABASE_URL": pg_database,
        "REDIS_URL": redis_db,
        "EMAIL_URL": smtpd.url,
        "SECRET_KEY": SECRET,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SEND_LEASE": "2",
    }
    app = make_app(settings)
    env = clean_env(**settings)
    worker_cmd = worker_command()
    smtpd.handler.hold()
    worker = start(worker_cmd, env, tmp_path, tmp_path / "worker1.log")
    try:
        assert api_signup(app.test_client(), "kill@example.com").status_code == 202
        assert smtpd.handler.waiting.wait(60), (tmp_path / "worker1.log").read_text()[-2000:]
        with app.app_context():
            email = db.session.scalars(select(ScheduledEmail)).one()
            assert email.status == "sending", "claimed, and inside DATA"
            email_id, lease_until = email.id, email.lease_until
            db.session.rollback()
        stop(worker, signal.SIGKILL)
        smtpd.handler.release()
        assert smtpd.received == [], "the client died before the server took the message in"

        # The dead worker's lease runs out (SEND_LEASE=2), by the clock the claim used.
        assert wait_until(lambda: utcnow() > lease_until, 30)
        worker = start(worker_cmd, env, tmp_path, tmp_path / "worker2.log")
        dispatch = start(
            [str(BIN / "leadmagnet"), "dispatch"], env, tmp_path, tmp_path / "dispatch.log"
        )
        dispatch.wait(timeout=60)
        assert dispatch.returncode == 0
        [received] = smtpd.wait_for(1)
        with app.app_context():
            db.session.expire_all()
            email = db.session.get(ScheduledEmail, email_id)
            assert email.status == "sent"
            assert received.message["Message-ID"] == email.message_id
    finally:
        smtpd.handler.release()
        stop(worker)


def locked_rows_waited_on(app) -> int:
    """Sessions of this database waiting for a row lock."""
    with app.app_context():
        count = db.session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
        db.session.rollback()
    return count


def test_a_batch_handed_to_a_worker_that_dies_before_claiming_it_comes_back_after_the_lease(
    tmp_path, pg_database, redis_db, smtpd
):
    """A pass hands a batch to the worker; the worker dies before it claims any of it (its
    first statement on them waits on a row lock). Those rows are handed again by the first
    pass after SEND_LEASE (so they leave within SEND_LEASE and one DISPATCH_INTERVAL), not
    five minutes later, and each is sent once."""
    lease = 5
    settings = {
        "DATABASE_URL": pg_database,
        "REDIS_URL": redis_db,
        "EMAIL_URL": smtpd.url,
        "SECRET_KEY": SECRET,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SEND_LEASE": str(lease),
    }
    app = make_app(settings)
    expected = make_due_rows(app, 5)
    producer = Celery(set_as_current=False)
    producer.conf.update(celery_config(app_settings(app)))
    handed: list[int] = []

    def handoff(ids: list[int]) -> None:
        handed.extend(ids)
        producer.send_task(DELIVER_BATCH, args=[ids])

    with app.app_context():
        assert run_pass(handoff) == 5
        holder = db.engine.connect()
    held = holder.begin()
    holder.execute(
        select(ScheduledEmail.id).where(ScheduledEmail.id == handed[0]).with_for_update()
    )
    log = tmp_path / "worker.log"
    worker = start(worker_command(), clean_env(**settings), tmp_path, log)
    try:
        assert wait_until(lambda: locked_rows_waited_on(app) == 1, 60), log.read_text()[-2000:]
        stop(worker, signal.SIGKILL)
    finally:
        held.rollback()
        holder.close()
    with app.app_context():
        rows = db.session.scalars(select(ScheduledEmail).where(ScheduledEmail.id.in_(handed)))
        [handed_at] = {email.queued_at for email in rows}
        assert all(email.status == "pending" and email.attempts == 0 for email in rows)
    with time_machine.travel(handed_at + timedelta(seconds=lease - 1), tick=False):
        assert dispatch_inline(app) == [], "not handed again while the hand-off holds"
    with time_machine.travel(handed_at + timedelta(seconds=lease + 1), tick=False):
        assert dispatch_inline(app) == ["sent"] * 5
    assert sorted(r.message["Message-ID"] for r in smtpd.received) == sorted(expected)

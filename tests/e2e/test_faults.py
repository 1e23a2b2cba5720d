"""Faults with real processes: Redis down during signups, a worker killed mid-send."""

from __future__ import annotations

import signal
import time

import pytest
from sqlalchemy import select

from service.core.extensions import db
from service.core.models import ScheduledEmail
from tests.conftest import SECRET, free_port, make_app
from tests.e2e.test_serve import serve, stop_and_check_children
from tests.helpers import api_signup
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
        assert smtpd.wait_for(1, timeout=5)

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
    """SIGKILL while the SMTP server sits on DATA: after the lease the email goes out, once."""
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
    smtpd.handler.stall = 30
    worker = start(worker_cmd, env, tmp_path, tmp_path / "worker1.log")
    try:
        assert api_signup(app.test_client(), "kill@example.com").status_code == 202
        with app.app_context():
            email_id = db.session.scalars(select(ScheduledEmail.id)).one()

            def claimed() -> bool:
                db.session.expire_all()
                return db.session.get(ScheduledEmail, email_id).status == "sending"

            assert wait_until(claimed, 20), (tmp_path / "worker1.log").read_text()[-2000:]
        time.sleep(0.5)  # the worker is now inside the SMTP transaction
        stop(worker, signal.SIGKILL)
        smtpd.handler.stall = 0
        assert smtpd.received == []

        time.sleep(2.1)  # the dead worker's lease runs out (SEND_LEASE=2)
        worker = start(worker_cmd, env, tmp_path, tmp_path / "worker2.log")
        dispatch = start(
            [str(BIN / "leadmagnet"), "dispatch"], env, tmp_path, tmp_path / "dispatch.log"
        )
        dispatch.wait(timeout=30)
        assert dispatch.returncode == 0
        [received] = smtpd.wait_for(1, timeout=15)
        with app.app_context():
            db.session.expire_all()
            email = db.session.get(ScheduledEmail, email_id)
            assert email.status == "sent"
            assert received.message["Message-ID"] == email.message_id
    finally:
        stop(worker)

"""PostgreSQL connections killed under signups (gunicorn) and sends (worker, beat), then the
database closed to connections for a while: signups answer 503 with a clear message (never
a 500, never a traceback), and everything recovers without a restart or a repeat."""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, func, select, text

from service.core.extensions import db
from service.core.models import DeliveryAttempt, ScheduledEmail, Subscriber
from tests.conftest import SECRET, make_app, scratch_database
from tests.faults.evidence import copies_by_message, unexplained_repeats
from tests.faults.stack import SignupStream, Stack
from tests.helpers import api_signup
from tests.procs import BIN, Browser, clean_env, start, stop, wait_until, worker_command

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]
KILLS = 4
BURST = 12  # signups just before the database goes away, their guides still to send
UNREACHABLE = 10  # signups tried, one every half second, while it refuses connections
OPEN = ("pending", "sending")
LEASE = 2  # SEND_LEASE: a send cut off by a lost connection goes again this soon


def clean_503(status: int, body: str, json_body: bool) -> bool:
    if status != 503 or "Traceback" in body or "OperationalError" in body:
        return False
    if json_body:
        error = json.loads(body).get("error")
        return isinstance(error, str) and "unavailable" in error
    return "briefly unavailable" in body


def delivered_to(smtpd) -> set[str]:
    return {r.recipients[0] for r in smtpd.received}


def nothing_left(app, broker: str) -> bool:
    """No guide waits or is being sent, and no task is queued or running."""
    with app.app_context():
        open_rows = db.session.scalar(
            select(func.count())
            .select_from(ScheduledEmail)
            .where(
                ScheduledEmail.step_id == "guide", ScheduledEmail.status.in_(("pending", "sending"))
            )
        )
        db.session.rollback()
    queue = redis.Redis.from_url(broker)
    return open_rows == 0 and queue.llen("celery") == 0 and queue.hlen("unacked") == 0


class Database:
    """The test's own database, seen from an admin connection elsewhere."""

    def __init__(self, url: str, admin: Engine) -> None:
        self.name = url.rsplit("/", 1)[1]
        self.admin = admin

    def kill_backends(self, settle: bool = False) -> int:
        """Terminate every session on the database; with `settle`, return only once they
        are gone (termination is asynchronous)."""
        with self.admin.connect() as conn:
            pids = conn.execute(
                text(
                    "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": self.name},
            ).all()
            still = text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)")

            def gone() -> bool:
                return not conn.execute(still, {"pids": [pid for pid, _ in pids]}).scalar()

            assert not settle or wait_until(gone, 10, 0.05)
        return len(pids)

    def allow_connections(self, allowed: bool) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{self.name}" WITH ALLOW_CONNECTIONS {allowed}'))


def test_killed_and_refused_connections_answer_503_and_recover_without_a_restart(
    tmp_path, redis_db, smtpd
):
    with scratch_database("pg_outage") as (url, admin):
        database = Database(url, admin)
        settings = {
            "DATABASE_URL": url,
            "REDIS_URL": redis_db,
            "EMAIL_URL": smtpd.url,
            "SECRET_KEY": SECRET,
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DISPATCH_INTERVAL": "2",
            "SEND_LEASE": str(LEASE),
        }
        app = make_app(settings)

        stack = Stack(tmp_path, clean_env(**settings))
        stack.start()
        pids = stack.pids()
        try:
            # 1. Connections killed again and again under a stream of signups and sends.
            killed = 0
            with SignupStream(stack, "k", rate=8) as stream:
                for _ in range(KILLS):
                    time.sleep(1.5)
                    killed += database.kill_backends()
                time.sleep(1.5)
            storm = stream.answers
            # Idle pooled connections killed while nothing runs: the pool notices on checkout
            # (core/liveness) and the next visitors never see it.
            killed += database.kill_backends(settle=True)
            quiet = [stack.signup(f"quiet{n}@example.com", f"127.0.4.{n + 2}") for n in range(6)]

            # 2. A burst the worker cannot keep up with (a slow SMTP server), so sends are
            # waiting when the database becomes unreachable: closed to new connections, the
            # open ones killed, for a few seconds of signups, scheduler passes and sends.
            smtpd.handler.stall = 0.25
            with ThreadPoolExecutor(BURST) as pool:
                burst = list(
                    pool.map(
                        lambda n: stack.signup(f"burst{n}@example.com", f"127.0.3.{n + 2}"),
                        range(BURST),
                    )
                )
            database.allow_connections(False)
            try:
                killed += database.kill_backends()
                down = []
                for n in range(UNREACHABLE):
                    down.append(stack.signup(f"down{n}@example.com", f"127.0.1.{n + 2}"))
                    time.sleep(0.5)  # the outage lasts a while: passes and sends fail in it
                browser = Browser(f"http://127.0.0.1:{stack.port}")
                form = browser.submit_signup(email="form@example.com", consent="yes")
                form_body = form.read().decode()
                health = browser.request("GET", "/healthz")
                health_body = json.loads(health.read())
            finally:
                database.allow_connections(True)
                smtpd.handler.stall = 0

            # 3. Back, without restarting anything.
            after = [stack.signup(f"after{n}@example.com", f"127.0.2.{n + 2}") for n in range(10)]
            accepted = {a.address for a in storm + quiet + burst + after if a.status == 202}

            def delivered() -> bool:
                return delivered_to(smtpd) >= accepted

            # Everything, the mail caught in the outage included, goes out from the running
            # processes: no rescue from here (the generous cap is for a busy machine).
            in_time = wait_until(delivered, 120, 0.2)
            settled = in_time and wait_until(lambda: nothing_left(app, redis_db), 60, 0.2)
            same_processes = stack.running() and stack.pids() == pids
        finally:
            stack.stop()

        with app.app_context():
            rows = db.session.execute(
                select(ScheduledEmail, Subscriber.email)
                .join(Subscriber, Subscriber.id == ScheduledEmail.subscriber_id)
                .where(ScheduledEmail.step_id == "guide")
            ).all()
            records = Counter(
                db.session.scalars(
                    select(DeliveryAttempt.message_id).where(DeliveryAttempt.outcome == "sent")
                )
            )
            db.session.remove()
            db.engine.dispose()

    copies = copies_by_message(smtpd)
    repeats = unexplained_repeats(smtpd, kills=[], lease=LEASE)
    storm_statuses = Counter(a.status for a in storm)
    worker_log = stack.tail("worker", 10**7)
    failed_tasks = worker_log.count("raised unexpected: OperationalError")
    record_tries = worker_log.count("could not record email")
    print(
        f"\npostgres outage: {killed} connections killed ({KILLS} rounds under "
        f"{len(storm)} signups: {dict(storm_statuses)}; then idle ones: the next "
        f"{len(quiet)} {dict(Counter(a.status for a in quiet))}), a burst of {BURST} "
        f"{dict(Counter(a.status for a in burst))}, then {len(down)} signups with the "
        f"database refusing connections: {dict(Counter(a.status for a in down))}, "
        f"{failed_tasks} worker task errors on the database, {record_tries} tries to record a "
        f"send; after it "
        f"{dict(Counter(a.status for a in after))}; {len(accepted & delivered_to(smtpd))}/"
        f"{len(accepted)} guides delivered by the running worker, "
        f"{len(repeats)} sent twice (no process died: none may be)"
    )
    assert not stream.errors, stream.errors[:5]
    assert killed >= KILLS, "connections were there to kill"
    assert set(storm_statuses) <= {202, 503}, [a for a in storm if a.status not in (202, 503)][:3]
    assert all(clean_503(a.status, a.body, True) for a in storm if a.status == 503)
    assert [a.status for a in quiet] == [202] * len(quiet), "stale pooled connections replaced"
    assert [a.status for a in burst] == [202] * BURST
    assert all(clean_503(a.status, a.body, True) for a in down), [(a.status, a.body) for a in down]
    assert clean_503(form.status, form_body, False), (form.status, form_body[:500])
    assert health.status == 503 and "database" in health_body["failing"], health_body
    assert [a.status for a in after] == [202] * len(after), [a.body for a in after]
    assert in_time, f"not delivered: {sorted(accepted - delivered_to(smtpd))}"
    assert settled, "every guide row reached its end and the broker emptied"
    assert same_processes, "nothing was restarted"
    assert not repeats, f"{len(repeats)} emails sent twice by live processes: {repeats[:3]}"
    guides = {address: email for email, address in rows}
    assert all(guides[a].status == "sent" for a in accepted)
    assert set(records.values()) <= {1}, "each send recorded once"
    assert set(records) == set(copies)


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"


def test_a_send_accepted_just_before_an_outage_is_recorded_when_the_database_returns(
    tmp_path, redis_db, smtpd
):
    """The server takes the message in; the database is gone before the worker records it,
    for longer than the send's lease. The live worker keeps trying and records it when the
    database returns, so a scheduler pass then has nothing to send again."""
    with scratch_database("record") as (url, admin):
        database = Database(url, admin)
        settings = {
            "DATABASE_URL": url,
            "REDIS_URL": redis_db,
            "EMAIL_URL": smtpd.url,
            "SECRET_KEY": SECRET,
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "SEND_LEASE": "1",
        }
        app = make_app(settings)
        env = clean_env(**settings)
        log = tmp_path / "worker.log"
        smtpd.handler.hold()
        worker = start(worker_command("--loglevel", "INFO"), env, tmp_path, log)
        try:
            assert api_signup(app.test_client(), "late@example.com").status_code == 202
            assert smtpd.handler.waiting.wait(60), tail(log)  # claimed, and inside DATA
            database.allow_connections(False)
            database.kill_backends(settle=True)
            smtpd.handler.release()  # the server takes the message in and says so

            def failed(text: str) -> bool:
                return "raised unexpected" in text

            # The record used to give up after four tries (3 s); the lease ran out after 1 s.
            tries = "could not record email"
            assert wait_until(lambda: failed(t := log.read_text()) or t.count(tries) >= 5, 60)
            database.allow_connections(True)
            assert wait_until(lambda: failed(t := log.read_text()) or "sent email" in t, 60)
            dispatch = [str(BIN / "leadmagnet"), "dispatch"]
            passing = start(dispatch, env, tmp_path, tmp_path / "dispatch.log")
            assert passing.wait(timeout=60) == 0, tail(tmp_path / "dispatch.log")
        finally:
            smtpd.handler.release()
            stop(worker)
        with app.app_context():
            db.engine.dispose()
            guide = select(ScheduledEmail).where(ScheduledEmail.step_id == "guide")
            email = db.session.scalars(guide).one()
            attempts = db.session.scalars(select(DeliveryAttempt.outcome)).all()
            db.session.remove()
            db.engine.dispose()
    print(
        f"\nrecord across an outage: {log.read_text().count(tries)} tries, "
        f"{len(smtpd.received)} copies, then the pass said "
        f"{(tmp_path / 'dispatch.log').read_text().strip().splitlines()[-1]!r}"
    )
    assert [r.recipients for r in smtpd.received] == [["late@example.com"]], "sent once"
    assert not failed(log.read_text()), "the worker gave up recording the send"
    assert email.status == "sent" and attempts == ["sent"]

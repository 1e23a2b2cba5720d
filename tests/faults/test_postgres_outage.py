"""PostgreSQL connections killed under signups (gunicorn) and sends (worker, beat), then the
database closed to connections for a while: signups answer 503 with a clear message (never
a 500, never a traceback), and everything recovers without a restart."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select, text

from service.core.clock import utcnow
from service.core.extensions import db
from service.core.models import ScheduledEmail, Subscriber
from service.sending.dispatch import REQUEUE_AFTER
from tests.conftest import SECRET, make_app, scratch_database
from tests.faults.stack import SignupStream, Stack
from tests.helpers import dispatch_inline
from tests.procs import Browser, clean_env, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]
KILLS = 4
BURST = 12  # signups just before the database goes away, their guides still to send
UNREACHABLE = 10  # signups tried, one every half second, while it refuses connections
LEASE = 2  # SEND_LEASE: a send cut off by a lost connection goes again this soon


def clean_503(status: int, body: str, json_body: bool) -> bool:
    if status != 503 or "Traceback" in body or "OperationalError" in body:
        return False
    if json_body:
        error = json.loads(body).get("error")
        return isinstance(error, str) and "unavailable" in error
    return "briefly unavailable" in body


def test_killed_and_refused_connections_answer_503_and_recover_without_a_restart(
    tmp_path, redis_db, smtpd
):
    with scratch_database("pg_outage") as (url, admin):
        name = url.rsplit("/", 1)[1]
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

        def kill_backends(settle: bool = False) -> int:
            """Terminate every session on the test's database; with `settle`, return only
            once they are gone (termination is asynchronous)."""
            with admin.connect() as conn:
                pids = conn.execute(
                    text(
                        "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                ).all()
                still = text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)")

                def gone() -> bool:
                    return not conn.execute(still, {"pids": [pid for pid, _ in pids]}).scalar()

                assert not settle or wait_until(gone, 10, 0.05)
            return len(pids)

        def allow_connections(allowed: bool) -> None:
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {allowed}'))

        stack = Stack(tmp_path, clean_env(**settings))
        stack.start()
        pids = stack.pids()
        try:
            # 1. Connections killed again and again under a stream of signups and sends.
            killed = 0
            with SignupStream(stack, "k", rate=8) as stream:
                for _ in range(KILLS):
                    time.sleep(1.5)
                    killed += kill_backends()
                time.sleep(1.5)
            storm = stream.answers
            # Idle pooled connections killed while nothing runs: the pool notices on checkout
            # (pool_pre_ping) and the next visitors never see it.
            killed += kill_backends(settle=True)
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
            allow_connections(False)
            try:
                killed += kill_backends()
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
                allow_connections(True)
                smtpd.handler.stall = 0

            # 3. Back, without restarting anything.
            after = [stack.signup(f"after{n}@example.com", f"127.0.2.{n + 2}") for n in range(10)]
            accepted = {a.address for a in storm + quiet + burst + after if a.status == 202}

            def delivered() -> bool:
                return {r.recipients[0] for r in smtpd.received} >= accepted

            in_time = wait_until(delivered, 30, 0.2)
            back_in_time = {r.recipients[0] for r in smtpd.received} >= {a.address for a in after}
            same_processes = stack.running() and stack.pids() == pids
        finally:
            stack.stop()

        # The test's own connections were killed too: start its pool afresh.
        with app.app_context():
            db.engine.dispose()
        # A batch a pass handed to the worker, whose task then failed on the database before
        # claiming the rest of it, comes back REQUEUE_AFTER after the hand-off (the pass must
        # not hand it twice sooner): travel there instead of waiting five minutes.
        late = {}
        if not in_time:
            with time_machine.travel(utcnow() + REQUEUE_AFTER + timedelta(seconds=LEASE + 1)):
                late = Counter(dispatch_inline(app))
        with app.app_context():
            rows = db.session.execute(
                select(ScheduledEmail, Subscriber.email)
                .join(Subscriber, Subscriber.id == ScheduledEmail.subscriber_id)
                .where(ScheduledEmail.step_id == "guide")
            ).all()
            db.session.remove()
            db.engine.dispose()

    copies: dict[str, Counter] = defaultdict(Counter)
    for received in smtpd.received:
        copies[received.recipients[0]][received.message["Message-ID"]] += 1
    repeats = {a: c for a, c in copies.items() if sum(c.values()) > 1}
    storm_statuses = Counter(a.status for a in storm)
    failed_tasks = stack.tail("worker", 10**7).count("raised unexpected: OperationalError")
    print(
        f"\npostgres outage: {killed} connections killed ({KILLS} rounds under "
        f"{len(storm)} signups: {dict(storm_statuses)}; then idle ones: the next "
        f"{len(quiet)} {dict(Counter(a.status for a in quiet))}), a burst of {BURST} "
        f"{dict(Counter(a.status for a in burst))}, then {len(down)} signups with the "
        f"database refusing connections: {dict(Counter(a.status for a in down))}, "
        f"{failed_tasks} worker task errors on the database; after it "
        f"{dict(Counter(a.status for a in after))}; {len(accepted & set(copies))}/"
        f"{len(accepted)} guides delivered ({'by the running worker' if in_time else late}), "
        f"{len(repeats)} sent twice (same Message-ID)"
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
    assert back_in_time, "the running worker delivers the signups made after the outage"
    assert same_processes, "nothing was restarted"
    assert accepted <= set(copies), sorted(accepted - set(copies))
    assert all(len(c) == 1 for c in copies.values()), "a repeat keeps its Message-ID"
    guides = {address: email for email, address in rows}
    assert all(guides[a].status == "sent" for a in accepted)
    assert all(guides[a].attempts > 1 for a in repeats), "a repeat comes from a second claim"

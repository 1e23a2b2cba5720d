"""The scheduler lock on PostgreSQL: one holder at a time, and free again as soon as the
holder's session ends: released, killed, cut off, or silent for longer than its timeout."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys

import psycopg
import pytest
from sqlalchemy.engine import make_url

from service.sending.scheduler_lock import KEY, SchedulerLock
from tests.conftest import free_port
from tests.procs import wait_until

pytestmark = pytest.mark.postgres


def conninfo(database_url: str) -> str:
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def holder(database_url: str) -> str | None:
    """The application name of the session holding the scheduler lock in this database."""
    with psycopg.connect(conninfo(database_url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
            " WHERE l.locktype = 'advisory' AND l.granted"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND (l.classid::bigint << 32) + l.objid::bigint = %s",
            (KEY,),
        ).fetchone()
    return row[0] if row else None


@pytest.fixture
def locks(pg_database):
    made: list[SchedulerLock] = []

    def make(timeout: float = 30) -> SchedulerLock:
        made.append(SchedulerLock(pg_database, timeout))
        return made[-1]

    yield make
    for lock in made:
        lock.release()


def test_one_holder_at_a_time_until_it_releases(pg_database, locks):
    first, second = locks(), locks()
    assert holder(pg_database) is None
    assert first.hold()
    assert not second.hold(), "a second beat gets nothing while the first holds it"
    assert first.hold(), "the holder keeps it"
    assert not second.hold()
    assert holder(pg_database) == first.name
    first.release()
    assert wait_until(second.hold, 10), "released: the other takes it over"
    assert not first.hold()
    assert holder(pg_database) == second.name


def test_a_killed_holder_frees_the_lock_with_its_connection(pg_database, locks):
    code = (
        "import sys, time; from service.sending.scheduler_lock import SchedulerLock;"
        f"lock = SchedulerLock({pg_database!r}, 30); assert lock.hold(); print('held', flush=True);"
        "time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        standby = locks()
        assert not standby.hold()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert wait_until(standby.hold, 10), "the dead beat's session took the lock with it"
    finally:
        proc.kill()
        proc.wait()


def test_a_holder_cut_off_from_the_database_knows_it_lost_the_lock(pg_database, locks, caplog):
    first, second = locks(), locks()
    assert first.hold()
    with psycopg.connect(conninfo(pg_database), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (first.conn.info.backend_pid,))
    assert wait_until(second.hold, 10)
    with caplog.at_level(logging.WARNING, "service.sending.scheduler_lock"):
        assert not first.hold(), "its session is gone, and the lock with it"
        assert not first.hold(), "then it stands by: the other holds it now"
    assert "lost the scheduler lock" in caplog.text
    assert holder(pg_database) == second.name


def test_a_holder_that_stops_renewing_loses_the_lock_after_its_timeout(pg_database, locks):
    """A hung beat, or one whose machine vanished without closing its connection: the server
    ends its idle session (idle_session_timeout) and the lock is free."""
    silent, standby = locks(timeout=0.5), locks()
    assert silent.hold()
    assert not standby.hold()
    assert wait_until(standby.hold, 15, interval=0.2)
    assert not silent.hold()


def test_an_unreachable_database_means_standing_by(caplog):
    lock = SchedulerLock(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none", 30)
    with caplog.at_level(logging.WARNING, "service.sending.scheduler_lock"):
        assert not lock.hold()
        assert not lock.hold()
    assert caplog.text.count("cannot be reached") == 1, "said once, not at every tick"

"""Celery beat's scheduler: on PostgreSQL only the beat holding the scheduler lock sends the
schedule, and a standby sends it once the holder stops; SQLite's one beat keeps Celery's own."""

from __future__ import annotations

import redis

from service.core.broker import DISPATCH
from tests.conftest import SECRET, make_app
from tests.procs import wait_until
from worker.app import bind
from worker.scheduler import LEAST_TIMEOUT, LockedScheduler

INTERVAL = 0.5  # DISPATCH_INTERVAL, seconds


def beat_app(tmp_path, database_url: str, broker_url: str | None = None):
    settings = {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET,
        "EMAIL_URL": f"file://{tmp_path / 'outbox'}",
        "DISPATCH_INTERVAL": str(INTERVAL),
    }
    if broker_url:
        settings["REDIS_URL"] = broker_url
    return bind(make_app(settings))


def queued_dispatches(broker_url: str) -> int:
    queue = redis.Redis.from_url(broker_url).lrange("celery", 0, -1)
    return sum(DISPATCH.encode() in message for message in queue)


def ticks_until_sent(scheduler, broker_url: str, already: int) -> bool:
    """Within half the time a silent holder keeps the lock: released, not timed out."""

    def tick() -> bool:
        scheduler.tick()
        return queued_dispatches(broker_url) > already

    return wait_until(tick, LEAST_TIMEOUT / 2)


def test_only_the_beat_holding_the_lock_sends_and_a_standby_takes_over(
    tmp_path, pg_database, redis_db
):
    celery = beat_app(tmp_path, pg_database, redis_db)
    first, second = (
        celery.conf.beat_scheduler(app=celery, schedule_filename=str(tmp_path / name))
        for name in ("first", "second")
    )
    try:
        assert isinstance(first, LockedScheduler)
        assert ticks_until_sent(first, redis_db, 0)
        # The standby's own dispatch entry falls due too, and it still sends nothing.
        assert wait_until(lambda: second.schedule["dispatch"].is_due().is_due, 10)
        sent = queued_dispatches(redis_db)
        second.tick()
        assert queued_dispatches(redis_db) == sent, "a standby sent the schedule"
        assert second.max_interval <= INTERVAL / 2, "it looks for a free lock twice an interval"

        first.close()  # the holder stops: its session, and the lock with it, end
        assert ticks_until_sent(second, redis_db, sent), "the standby took over"
    finally:
        for scheduler in (first, second):
            scheduler.lock.release()


def test_sqlite_keeps_celerys_own_scheduler(tmp_path):
    """The embedded default runs one beat on one machine's database: no lock to take."""
    celery = beat_app(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert celery.conf.beat_scheduler == "celery.beat:PersistentScheduler"


def test_a_standby_keeps_its_schedule_file_fresh(tmp_path, pg_database, redis_db):
    """The compose healthcheck takes a beat whose schedule file goes stale for stuck: a
    standby's loop is alive, so beat's periodic sync rewrites its file too."""
    celery = beat_app(tmp_path, pg_database, redis_db)
    first, second = (
        celery.conf.beat_scheduler(app=celery, schedule_filename=str(tmp_path / name))
        for name in ("first", "second")
    )

    def written() -> float:
        return max(path.stat().st_mtime_ns for path in tmp_path.glob("second*"))

    try:
        assert first.lock.hold()
        second._do_sync()  # as at its start
        synced = written()

        def sync() -> bool:
            second.tick()
            second._do_sync()  # as beat's loop does every 3 minutes
            return written() > synced

        assert wait_until(sync, 5)
        assert not second.lock.held
    finally:
        for scheduler in (first, second):
            scheduler.lock.release()

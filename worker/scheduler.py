"""Celery beat's scheduler on PostgreSQL: a beat may run on every machine; the one holding the
scheduler lock sends the schedule, the others stand by to take over."""

from __future__ import annotations

from typing import Any

from celery.beat import PersistentScheduler

from service.core.settings import Settings
from service.sending.scheduler_lock import SchedulerLock

# A beat that stops renewing loses the lock after twice the interval, never under this.
LEAST_TIMEOUT = 10.0


class LockedScheduler(PersistentScheduler):
    """Sends what is due only while it holds the scheduler lock."""

    def __init__(self, *args: Any, settings: Settings, **kwargs: Any) -> None:
        # The lock connects at the first tick, not here: Celery also makes instances only to
        # print its banner.
        interval = settings.dispatch_interval
        self.lock = SchedulerLock(settings.database_url, max(2 * interval, LEAST_TIMEOUT))
        # Wake at least twice an interval: the holder renews its session, a standby looks for
        # a free lock, so a killed holder is replaced within half an interval.
        self.wake = interval / 2
        super().__init__(*args, **{**kwargs, "max_interval": self.wake})

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if self.lock.hold():
            return float(super().tick(*args, **kwargs))
        # Standing by, the loop is alive all the same: keep the entries loaded, so that beat's
        # periodic sync rewrites the schedule file that the compose healthcheck watches.
        self.schedule.keys()
        return self.wake

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.lock.release()

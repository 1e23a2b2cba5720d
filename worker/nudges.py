"""The worker's consumer of the Redis nudge list: a thread in the worker's main process that
turns the ids the web app pushed into DELIVER_BATCH tasks for the pool, many ids a task
when the pool is busy."""

from __future__ import annotations

import logging
import threading

from celery import Celery

from service.core import nudge_list
from service.core.broker import DELIVER_BATCH

log = logging.getLogger(__name__)
BATCH = 50  # ids a task at most: as a scheduler pass's hand-off chunk
WAIT = 1.0  # seconds a pop blocks, so that a stop is noticed within about that
PAUSE = 1.0  # seconds before trying Redis again after a failure


class NudgeConsumer(threading.Thread):
    """Started once the worker is ready, stopped with it. Ids it took and could not hand on
    are found by the next scheduler pass: the database holds the schedule."""

    def __init__(self, celery: Celery, redis_url: str) -> None:
        super().__init__(name="nudge-consumer", daemon=True)
        self.celery = celery
        self.queue = celery.conf.task_default_queue
        # A pop blocks for WAIT: the socket must wait longer than that.
        self.source = nudge_list.client(redis_url, timeout=WAIT + nudge_list.TIMEOUT)
        self.stopped = threading.Event()

    def run(self) -> None:
        failing = False
        while not self.stopped.is_set():
            try:
                ids = nudge_list.take(self.source, BATCH, WAIT, self.pool_busy)
                if ids:
                    self.celery.send_task(DELIVER_BATCH, args=[ids])
                failing = False
            except Exception as exc:  # Redis or the publish: the thread must live on
                if not failing:  # once an outage, not once a second
                    log.warning("nudge consumer: %s; retrying every %s s", exc, PAUSE)
                failing = True
                self.stopped.wait(PAUSE)

    def pool_busy(self) -> bool:
        """A task waits in the broker: every pool process is taken (prefetch is one)."""
        return bool(self.source.llen(self.queue))

    def stop(self) -> None:
        self.stopped.set()

"""The nudge on Redis: the web app appends the ids of emails to send now to one list, and the
worker's consumer takes them in batches. The web's pushes go through one sender thread per
process, so a request never waits on Redis and the ids of many requests share one RPUSH
under load; the database still holds the schedule, so an id lost here is sent by the next
scheduler pass."""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from collections.abc import Callable

import redis
from flask import Flask
from redis.backoff import NoBackoff
from redis.retry import Retry

NUDGES = "leadmagnet:nudges"
TIMEOUT = 2  # seconds, as the Celery producer's broker_connection_timeout
HOLD = 0.2  # seconds a batch may wait for more ids while the workers are busy
HOLD_STEP = 0.005  # seconds between two looks at whether they still are
LINGER = 0.01  # seconds the web's sender waits after an id for more to share its push


def client(url: str, timeout: float = TIMEOUT) -> redis.Redis:
    """A client that fails at once on a refused connection, and within `timeout` (or TIMEOUT,
    the sooner) on one that does not answer: a nudge is best effort, the rate limits fall back
    to memory, and a web thread must not wait through retries while Redis is down."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=min(TIMEOUT, timeout),
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


log = logging.getLogger(__name__)


class Sender:
    """Pushes the ids handed to it from a thread of its own: all that come within LINGER of
    the first, or while the last push was on its way, go in one RPUSH. A failed push is
    logged and its ids dropped: the scheduler pass sends those rows."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.waiting: queue.SimpleQueue[list[int]] = queue.SimpleQueue()
        self.pending = 0  # ids handed over and not yet pushed (or dropped)
        self.idle = threading.Condition()
        self.thread: threading.Thread | None = None
        # A forked child (a prefork pool's, say) has none of the parent's threads, and a lock
        # the sender held at the fork would stay held: it starts afresh.
        os.register_at_fork(after_in_child=self._forget)

    def send(self, email_ids: list[int]) -> None:
        """Hand these ids over; returns at once."""
        with self.idle:
            if self.thread is None:
                self._start()
            self.pending += len(email_ids)
        self.waiting.put(email_ids)

    def flush(self, timeout: float = TIMEOUT * 2) -> bool:
        """Wait until every id handed over so far was pushed or dropped (at shutdown, and for
        a reader that must see the list as the commit left it); whether it got there."""
        with self.idle:
            return self.idle.wait_for(lambda: self.pending == 0, timeout)

    def _forget(self) -> None:
        self.idle = threading.Condition()
        self.waiting = queue.SimpleQueue()
        self.pending, self.thread = 0, None

    def _start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="nudge-sender", daemon=True)
        self.thread.start()
        atexit.register(self.flush, 1.0)  # a worker that stops pushes what it committed

    def _run(self) -> None:
        redis_client = client(self.url)
        while True:
            ids = self._batch()
            try:
                redis_client.rpush(NUDGES, *ids)
            except Exception as exc:  # any Redis failure; the database holds the schedule
                log.warning("could not nudge the worker for emails %s: %s", ids, exc)
            with self.idle:
                self.pending -= len(ids)
                self.idle.notify_all()

    def _batch(self) -> list[int]:
        ids = list(self.waiting.get())
        # Under load the next requests' ids come within the linger: one push, one wake of
        # this thread, for many signups (a round trip each cost a web worker ~0.2 ms of CPU).
        time.sleep(LINGER)
        while True:
            try:
                ids.extend(self.waiting.get_nowait())
            except queue.Empty:
                return ids


def sender(app: Flask, url: str) -> Sender:
    """The app's sender (one per process, started on first use)."""
    found = app.extensions.get(NUDGES)
    if found is None:
        found = app.extensions[NUDGES] = Sender(url)
    return found


def take(
    source: redis.Redis, most: int, wait: float, busy: Callable[[], bool] = lambda: False
) -> list[int]:
    """Up to `most` ids, oldest first, each once; [] after `wait` seconds with none. While
    `busy()` says the workers could not start on them yet, wait up to HOLD for more to
    come, so that under load one batch carries many (idle, the first id goes at once)."""
    first = source.blpop([NUDGES], timeout=wait)
    if first is None:
        return []
    until = time.monotonic() + HOLD
    while time.monotonic() < until and busy():
        time.sleep(HOLD_STEP)
    rest = source.lpop(NUDGES, most - 1) if most > 1 else None
    raw = [first[1], *(rest or [])]
    return list(dict.fromkeys(int(value) for value in raw))

"""The nudge on Redis: the web app appends the ids of emails to send now to one list, and the
worker's consumer takes them in batches. One RPUSH a signup costs a tenth of a Celery
publish; the database still holds the schedule, so an id lost here is sent by the next
scheduler pass."""

from __future__ import annotations

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


def client(url: str, timeout: float = TIMEOUT) -> redis.Redis:
    """A client that fails at once on a refused connection: a nudge is best effort, and a web
    thread must not wait through retries while Redis is down."""
    return redis.Redis.from_url(
        url, socket_connect_timeout=TIMEOUT, socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )


def push(app: Flask, url: str, email_ids: list[int]) -> None:
    """Append these ids to the list at `url` (one round trip); raises what Redis raises."""
    found = app.extensions.get(NUDGES)
    if found is None:
        found = app.extensions[NUDGES] = client(url)
    found.rpush(NUDGES, *email_ids)


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

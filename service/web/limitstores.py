"""Where the signup limits' counts live: Redis, shared by every web process (one round trip to
read all of a request's windows, one to count them), or this process's memory, for the
embedded default and while Redis cannot be reached."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)
PREFIX = "LIMITS:"
TIMEOUT = 1  # seconds: a signup waits no longer than this on a Redis that does not answer
RETRY = 5  # seconds between two tries of a Redis that failed


@dataclass(frozen=True)
class Counter:
    key: str
    ends: int  # epoch seconds: when its window ends and the count may go


class Store(Protocol):
    def read(self, keys: list[str]) -> list[int]: ...
    def count(self, counters: list[Counter]) -> None: ...


class MemoryStore:
    """Counts in this process, forgotten as their windows end."""

    def __init__(self) -> None:
        self.counts: dict[str, tuple[int, int]] = {}
        self.lock = threading.Lock()

    def read(self, keys: list[str]) -> list[int]:
        with self.lock:
            return [self.counts.get(key, (0, 0))[0] for key in keys]

    def count(self, counters: list[Counter]) -> None:
        now = time.time()
        with self.lock:
            for counter in counters:
                self.counts[counter.key] = (
                    self.counts.get(counter.key, (0, 0))[0] + 1,
                    counter.ends,
                )
            if len(self.counts) > 10_000:  # old windows' keys are never read again
                self.counts = {k: v for k, v in self.counts.items() if v[1] > now}


# Each counter counted and given its window's time to live, in one call and one answer: a
# MULTI/EXEC pipeline's twelve answers, parsed in Python, cost four times as much.
COUNT = """
for i, key in ipairs(KEYS) do
  redis.call('INCR', key)
  redis.call('EXPIRE', key, ARGV[i])
end
return #KEYS
"""


class RedisStore:
    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(
            url, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT, retry=Retry(NoBackoff(), 0)
        )
        self.counting = self.client.register_script(COUNT)

    def read(self, keys: list[str]) -> list[int]:
        return [int(value or 0) for value in self.client.mget([PREFIX + key for key in keys])]

    def count(self, counters: list[Counter]) -> None:
        now = time.time()
        # Seconds to live, not EXPIREAT: Redis's clock need not be this one's.
        lives = [max(int(counter.ends - now), 1) for counter in counters]
        self.counting(keys=[PREFIX + counter.key for counter in counters], args=lives)


class Fallback:
    """Redis, and this process's memory while Redis fails: limits go on being counted, per
    process, through an outage (tried again every RETRY seconds)."""

    def __init__(self, primary: RedisStore) -> None:
        self.primary, self.spare = primary, MemoryStore()
        self.down_until = 0.0

    def read(self, keys: list[str]) -> list[int]:
        if time.monotonic() >= self.down_until:
            try:
                counts = self.primary.read(keys)
            except (redis.RedisError, OSError) as exc:
                self._failed(exc)
            else:
                self._back()
                return counts
        return self.spare.read(keys)

    def count(self, counters: list[Counter]) -> None:
        if time.monotonic() >= self.down_until:
            try:
                return self.primary.count(counters)
            except (redis.RedisError, OSError) as exc:
                self._failed(exc)
        self.spare.count(counters)

    def _failed(self, exc: Exception) -> None:
        if not self.down_until:
            log.warning("rate limits counted in memory until Redis answers again: %s", exc)
        self.down_until = time.monotonic() + RETRY

    def _back(self) -> None:
        if self.down_until:
            log.info("rate limits counted in Redis again")
            self.down_until = 0.0


def store_for(redis_url: str | None) -> Store:
    return MemoryStore() if redis_url is None else Fallback(RedisStore(redis_url))

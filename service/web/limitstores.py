"""Where the rate limits' counts live: Redis, shared by every web process, or this process's
memory, for the embedded default and while Redis cannot be reached. A request takes one from
each of its windows at once, or from none if any is full, in one round trip; an answer the
rule does not count gives them back."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import redis

from ..core.nudge_list import client

log = logging.getLogger(__name__)
PREFIX = "LIMITS:"
TIMEOUT = 1  # seconds: a request waits no longer than this on a Redis that does not answer
RETRY = 5  # seconds between two tries of a Redis that failed


@dataclass(frozen=True)
class Counter:
    key: str
    most: int
    ends: int  # epoch seconds: when its window ends and the count may go


class Store(Protocol):
    def take(self, counters: list[Counter]) -> tuple[list[int], bool]:
        """The counts before this request, and whether it took one from every window (none
        is taken when any window is full)."""
        ...

    def give_back(self, counters: list[Counter]) -> None: ...


class MemoryStore:
    """Counts in this process, forgotten as their windows end."""

    def __init__(self) -> None:
        self.counts: dict[str, tuple[int, int]] = {}
        self.lock = threading.Lock()

    def take(self, counters: list[Counter]) -> tuple[list[int], bool]:
        now = time.time()
        with self.lock:
            counts = [self.counts.get(c.key, (0, 0))[0] for c in counters]
            if any(n >= c.most for n, c in zip(counts, counters, strict=True)):
                return counts, False
            for n, counter in zip(counts, counters, strict=True):
                self.counts[counter.key] = (n + 1, counter.ends)
            if len(self.counts) > 10_000:  # ended windows' keys are never read again
                self.counts = {k: v for k, v in self.counts.items() if v[1] > now}
        return counts, True

    def give_back(self, counters: list[Counter]) -> None:
        with self.lock:
            for counter in counters:
                n, ends = self.counts.get(counter.key, (0, 0))
                if n > 0:
                    self.counts[counter.key] = (n - 1, ends)


# KEYS: the counters; ARGV: each one's most, then each one's seconds to live. Read and counted
# in one call, so two requests never both take the last one.
TAKE = """
local n = #KEYS
local counts = {}
local full = 0
for i = 1, n do
  counts[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
  if counts[i] >= tonumber(ARGV[i]) then full = 1 end
end
if full == 0 then
  for i = 1, n do
    redis.call('INCR', KEYS[i])
    redis.call('EXPIRE', KEYS[i], ARGV[n + i])
  end
end
counts[n + 1] = full
return counts
"""
# An ended window's key is gone: giving back must not make it again, at -1 and forever.
GIVE_BACK = """
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('DECR', KEYS[i]) end
end
return #KEYS
"""


class RedisStore:
    def __init__(self, url: str) -> None:
        self.client = client(url, timeout=TIMEOUT)
        self.taking = self.client.register_script(TAKE)
        self.giving_back = self.client.register_script(GIVE_BACK)

    def take(self, counters: list[Counter]) -> tuple[list[int], bool]:
        now = time.time()
        # Seconds to live, not EXPIREAT: Redis's clock need not be this one's.
        lives = [max(int(c.ends - now), 1) for c in counters]
        answer = self.taking(keys=self._keys(counters), args=[c.most for c in counters] + lives)
        return [int(n) for n in answer[:-1]], answer[-1] == 0

    def give_back(self, counters: list[Counter]) -> None:
        self.giving_back(keys=self._keys(counters))

    def _keys(self, counters: list[Counter]) -> list[str]:
        return [PREFIX + counter.key for counter in counters]


class Fallback:
    """Redis, and this process's memory while Redis fails: limits go on being counted, per
    process, through an outage (tried again every RETRY seconds)."""

    def __init__(self, primary: RedisStore) -> None:
        self.primary, self.spare = primary, MemoryStore()
        self.down_until = 0.0

    def take(self, counters: list[Counter]) -> tuple[list[int], bool]:
        if time.monotonic() >= self.down_until:
            try:
                taken = self.primary.take(counters)
            except (redis.RedisError, OSError) as exc:
                self._failed(exc)
            else:
                self._back()
                return taken
        return self.spare.take(counters)

    def give_back(self, counters: list[Counter]) -> None:
        # Given back where it was taken, as far as one can tell: a Redis that failed between
        # the two keeps one too many until its window ends.
        if time.monotonic() < self.down_until:
            return self.spare.give_back(counters)
        try:
            self.primary.give_back(counters)
        except (redis.RedisError, OSError) as exc:
            self._failed(exc)

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

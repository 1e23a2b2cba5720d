"""Send rates that hold across every worker and machine: one token bucket per key (SEND_RATE
for all mail, each broadcast's own limit), kept in Redis and taken by one Lua script.

The bucket is a GCRA: Redis keeps the theoretical time of the next free slot; a sender
reserves the next slot atomically and waits until it comes (never more than a few intervals,
one per concurrent sender), so N workers together send at the rate and no worker sleeps
the whole send. Without Redis (the embedded default: one process sends) the same
arithmetic runs in this process.

The burst: a slot may lie up to BURST seconds in the past. Senders that fell behind for a
moment (a slow reply, a busy machine) catch up on what they missed instead of losing it,
so a send holds its rate on average; any T seconds carry at most rate * (T + BURST)
emails, and an idle bucket lets rate * BURST go at once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Protocol

import redis

log = logging.getLogger(__name__)
PREFIX = "leadmagnet:send-rate:"
ALL_MAIL = "all"
BURST = 1.0  # seconds of the rate that senders who fell behind may catch up on
# KEYS[1]: the bucket; ARGV[1]: microseconds per email; ARGV[2]: the burst in microseconds.
# Returns microseconds to wait (0: go now).
RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local earliest = now - tonumber(ARGV[2])
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if slot < earliest then slot = earliest end
local after = slot + interval
redis.call('SET', KEYS[1], string.format('%.0f', after), 'PX',
  math.max(0, math.floor((after - earliest) / 1000)) + 1000)
if slot < now then return 0 end
return math.floor(slot - now)
"""


class Bucket(Protocol):
    def reserve(self, key: str, per_second: float) -> float:
        """Take the next slot of `key` at `per_second`; the seconds to wait for it."""
        ...


class RedisBucket:
    """The buckets every worker shares."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.script = self.client.register_script(RESERVE)

    def reserve(self, key: str, per_second: float) -> float:
        interval = max(1, round(1_000_000 / per_second))
        try:
            waited = self.script(keys=[PREFIX + key], args=[interval, round(BURST * 1_000_000)])
        except redis.RedisError as exc:
            # No shared bucket: pace this process alone rather than send unpaced.
            log.warning("send rate bucket unreachable, pacing this process alone: %s", exc)
            return 1 / per_second
        return int(waited) / 1_000_000


class LocalBucket:
    """The same reservation in this process: enough where one process sends."""

    def __init__(self) -> None:
        self.slots: dict[str, float] = {}
        self.lock = threading.Lock()

    def reserve(self, key: str, per_second: float) -> float:
        with self.lock:
            now = time.monotonic()
            slot = max(self.slots.get(key, 0.0), now - BURST)
            self.slots[key] = slot + 1 / per_second
            return max(0.0, slot - now)


_buckets: dict[tuple[int, str | None], Bucket] = {}


def bucket_for(redis_url: str | None) -> Bucket:
    """One per process and URL (a forked worker child makes its own connection)."""
    key = (os.getpid(), redis_url)
    found = _buckets.get(key)
    if found is None:
        found = RedisBucket(redis_url) if redis_url else LocalBucket()
        _buckets[key] = found
    return found


def wait_for_turn(bucket: Bucket, limits: dict[str, float]) -> float:
    """Reserve a slot in each limited bucket and sleep until the latest; the seconds slept."""
    wait = max((bucket.reserve(key, rate) for key, rate in limits.items()), default=0.0)
    if wait > 0:
        time.sleep(wait)
    return wait

"""The send-rate bucket's arithmetic: one slot per email at the rate, a burst of BURST
seconds' worth (plus the slot of now) for senders that fell behind, and never more."""

from __future__ import annotations

import pytest

from service.sending import send_rate
from service.sending.send_rate import BURST, LocalBucket, RedisBucket

RATE = 20.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    found = Clock()
    monkeypatch.setattr(send_rate.time, "monotonic", found)
    return found


def test_an_idle_bucket_lets_one_burst_through_then_paces(clock):
    bucket = LocalBucket()
    burst = round(RATE * BURST) + 1  # the slots of the last BURST seconds, and now's
    waits = [bucket.reserve("all", RATE) for _ in range(burst + 10)]
    assert waits[:burst] == [0.0] * burst
    assert waits[burst:] == pytest.approx([(n + 1) / RATE for n in range(10)])


def test_senders_that_fell_behind_catch_up_only_one_burst(clock):
    bucket = LocalBucket()
    for _ in range(100):  # a busy minute's worth of reservations, already queued
        bucket.reserve("all", RATE)
    clock.now += 60  # then nobody asked for a minute: missed slots are not all owed
    waits = [bucket.reserve("all", RATE) for _ in range(3 * round(RATE * BURST))]
    free = sum(w == 0.0 for w in waits)
    assert free == round(RATE * BURST) + 1
    assert max(waits) == pytest.approx(2 * BURST - 1 / RATE)


def test_keys_are_paced_apart(clock):
    bucket = LocalBucket()
    for _ in range(round(RATE * BURST) + 1):
        bucket.reserve("broadcast:1", RATE)
    assert bucket.reserve("broadcast:1", RATE) > 0
    assert bucket.reserve("broadcast:2", RATE) == 0.0


@pytest.mark.redis
def test_the_shared_bucket_does_the_same_arithmetic_in_redis(redis_db):
    first, second = RedisBucket(redis_db), RedisBucket(redis_db)  # two workers
    burst = round(RATE * BURST) + 1
    waits = [(first if n % 2 else second).reserve("all", RATE) for n in range(burst + 20)]
    # Redis's own clock runs meanwhile (a few milliseconds): a slot or two may come free.
    assert waits[: burst - 2] == [0.0] * (burst - 2)
    assert waits[-1] == pytest.approx(19 / RATE, abs=0.2)
    assert sorted(waits) == waits  # each reservation takes the next slot, none shared


@pytest.mark.redis
def test_with_redis_every_worker_takes_the_one_shared_bucket(redis_db):
    """A bucket per process let three workers send three times SEND_RATE."""
    assert isinstance(send_rate.bucket_for(redis_db), RedisBucket)
    assert isinstance(send_rate.bucket_for(None), LocalBucket)  # embedded: one process sends

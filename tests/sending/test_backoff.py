"""Retry backoff: doubling from a minute, capped at six hours, jittered by a fifth."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from service.sending.delivery import BACKOFF_BASE, BACKOFF_CAP, backoff

JITTER = (0.8, 1.2)


def bounds(seconds: float) -> tuple[timedelta, timedelta]:
    return timedelta(seconds=seconds * JITTER[0]), timedelta(seconds=seconds * JITTER[1])


@pytest.mark.parametrize("attempts", range(1, 10))
def test_each_attempt_doubles_the_wait(attempts: int):
    low, high = bounds(min(BACKOFF_BASE * 2 ** (attempts - 1), BACKOFF_CAP))
    random.seed(attempts)
    assert all(low <= backoff(attempts) <= high for _ in range(200))


def test_the_wait_stops_growing_at_the_cap():
    low, high = bounds(BACKOFF_CAP)
    waits = [backoff(n) for n in (10, 11, 20, 60)]  # 2**59 minutes would overflow timedelta
    assert all(low <= wait <= high for wait in waits)
    assert BACKOFF_BASE * 2**8 < BACKOFF_CAP < BACKOFF_BASE * 2**9  # 10 is the first capped


def test_no_attempt_yet_waits_like_the_first():
    low, high = bounds(BACKOFF_BASE)
    assert low <= backoff(0) <= high


def test_the_jitter_spreads_retries_across_its_whole_band():
    """A recovered server must not get every deferred email back at the same second."""
    random.seed(7)
    waits = sorted(backoff(3).total_seconds() for _ in range(500))
    low, high = (240 * factor for factor in JITTER)
    assert low <= waits[0] < low + 10 and high - 10 < waits[-1] <= high
    assert len(set(waits)) > 450

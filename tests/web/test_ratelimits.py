"""The rate limits' mechanism: one round trip to read a request's windows and one to count
them, windows that end on the clock, the counts in the headers, and memory while Redis fails."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import redis
import time_machine
from flask import Flask

from service.web import limitstores
from service.web.limitstores import Counter, Fallback, RedisStore
from service.web.ratelimits import EXTENSION
from tests.conftest import free_port
from tests.helpers import api_signup

# 20 s into a minute, an hour and a day: each window ends at its own boundary.
START = datetime(2027, 4, 5, 10, 0, 20, tzinfo=UTC)

pytestmark = pytest.mark.redis


def commands(app: Flask, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the commands the app's limits send to Redis, as they are sent."""
    client = app.extensions[EXTENSION].primary.client
    sent: list[str] = []
    send = client.execute_command

    def counted(*args, **options):
        sent.append(str(args[0]))
        return send(*args, **options)

    monkeypatch.setattr(client, "execute_command", counted)
    return sent


def test_a_signup_reads_its_five_windows_in_one_round_trip_and_counts_them_in_one(
    limited: Callable[..., Flask], redis_db: str, monkeypatch: pytest.MonkeyPatch
):
    app = limited(REDIS_URL=redis_db)
    client = app.test_client()
    assert api_signup(client, "ann@example.com").status_code == 202  # loads the script once
    sent = commands(app, monkeypatch)
    assert api_signup(client, "bea@example.com").status_code == 202
    assert sent == ["MGET", "EVALSHA"]
    sent.clear()
    assert client.post("/api/subscribe", json={"email": "cy@example.com"}).status_code == 422
    assert sent == ["MGET"], "a refused signup is read, not counted"


def test_each_count_lives_until_its_window_ends(limited: Callable[..., Flask], redis_db: str):
    app = limited(REDIS_URL=redis_db)
    with time_machine.travel(START, tick=False):
        assert api_signup(app.test_client(), "ann@example.com").status_code == 202
    stored = redis.Redis.from_url(redis_db)
    lives = {}
    for key in stored.scan_iter("LIMITS:*"):
        _, most, seconds, _ = key.decode().rsplit("/", 3)
        assert stored.get(key) == b"1"
        lives[int(most), int(seconds)] = stored.ttl(key)
    # 10:00:20: the minute ends in 40 s, the hour in 59:40, the day in 13:59:40 (Redis
    # counts them down meanwhile: a second at most).
    ends = {(30, 60): 40, (300, 3600): 3580, (2000, 86400): 50380}
    ends |= {(5, 3600): 3580, (20, 86400): 50380}
    assert lives.keys() == ends.keys()
    for window, seconds in ends.items():
        assert seconds - 1 <= lives[window] <= seconds, (window, lives[window])


def test_the_headers_count_down_and_a_refusal_says_when_the_window_ends(
    limited: Callable[..., Flask],
):
    client = limited().test_client()
    with time_machine.travel(START, tick=False):
        answers = [api_signup(client, f"p{n}@example.com") for n in range(30)]
        refused = api_signup(client, "one-more@example.com")
    start = int(START.timestamp())
    seen = [
        (
            a.headers["X-RateLimit-Limit"],
            a.headers["X-RateLimit-Remaining"],
            a.headers["X-RateLimit-Reset"],
        )
        for a in answers
    ]
    # The window closest to full: each address's hour (5, one used) until the client's
    # minute has as few left; on a tie the shorter window.
    hour, minute = str(start + 3580), str(start + 40)
    assert seen == [("5", "4", hour)] * 25 + [("30", str(n), minute) for n in (4, 3, 2, 1, 0)]
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "40"
    assert refused.headers["X-RateLimit-Remaining"] == "0"


def test_while_redis_fails_the_counts_go_on_in_memory_and_redis_is_tried_again_later(
    monkeypatch: pytest.MonkeyPatch, redis_db: str
):
    gone = Fallback(RedisStore(f"redis://127.0.0.1:{free_port()}/0"))  # nobody listens
    key = [Counter("signup-ip:192.0.2.1/30/60/1", 2**40)]
    assert gone.read([key[0].key]) == [0]
    gone.count(key)
    gone.count(key)
    assert gone.read([key[0].key]) == [2], "counted in memory"

    tried: list[str] = []
    monkeypatch.setattr(gone.primary, "read", lambda keys: tried.append("read") or [7])
    assert gone.read([key[0].key]) == [2] and not tried, "not tried again at once"

    clock = limitstores.time.monotonic() + limitstores.RETRY
    monkeypatch.setattr(limitstores.time, "monotonic", lambda: clock)
    assert gone.read([key[0].key]) == [7] and tried == ["read"], "Redis again after RETRY"


def test_with_two_windows_full_a_refusal_waits_for_the_one_that_ends_last(
    limited: Callable[..., Flask],
):
    """300 in an hour from one client, 30 of them in its last minute: the minute ends at
    10:10, but only at 11:00 does the hour have room again."""
    client = limited().test_client()
    with time_machine.travel(datetime(2027, 4, 5, 10, 0, tzinfo=UTC), tick=False) as traveller:
        for minute in range(10):
            for n in range(30):
                assert api_signup(client, f"p{minute}.{n}@example.com").status_code == 202
            traveller.shift(60 if minute < 9 else 30)
        refused = api_signup(client, "one-more@example.com")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == str(50 * 60 + 30)  # 10:09:30 to 11:00
    assert refused.headers["X-RateLimit-Limit"] == "300"

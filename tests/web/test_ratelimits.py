"""The rate limits' mechanism: one round trip to read and take from a request's windows (one
more to give back), windows that end on the clock, the counts in the headers, and memory
while Redis fails."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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


def _keys(redis_db: str, owner: str) -> list[bytes]:
    return list(redis.Redis.from_url(redis_db).scan_iter(f"LIMITS:{owner}*"))


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


def test_a_signup_reads_and_takes_from_its_five_windows_in_one_round_trip(
    limited: Callable[..., Flask], redis_db: str, monkeypatch: pytest.MonkeyPatch
):
    app = limited(REDIS_URL=redis_db)
    client = app.test_client()
    # Each script is loaded into Redis on its first use.
    assert api_signup(client, "ann@example.com").status_code == 202
    assert client.post("/api/subscribe", json={"email": "dee@example.com"}).status_code == 422
    sent = commands(app, monkeypatch)
    assert api_signup(client, "bea@example.com").status_code == 202
    assert sent == ["EVALSHA"]
    sent.clear()
    assert client.post("/api/subscribe", json={"email": "cy@example.com"}).status_code == 422
    assert sent == ["EVALSHA", "EVALSHA"], "a refused signup gives back what it took"
    counts = [int(v) for v in redis.Redis.from_url(redis_db).mget(_keys(redis_db, "signup-ip"))]
    assert sorted(counts) == [2, 2, 2], "the client's two signups, not the refused one"


def test_two_requests_never_both_take_the_last_one(redis_db: str):
    """The read and the take are one call: 12 threads after the last of 5 get exactly one."""
    store = RedisStore(redis_db)
    counter = [Counter("address:x/5/3600/1", 5, 2**40)]
    for _ in range(4):
        assert store.take(counter)[1]
    with ThreadPoolExecutor(12) as pool:
        taken = list(pool.map(lambda _: store.take(counter)[1], range(12)))
    assert taken.count(True) == 1
    assert store.take(counter) == ([5], False)


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
    monkeypatch: pytest.MonkeyPatch,
):
    gone = Fallback(RedisStore(f"redis://127.0.0.1:{free_port()}/0"))  # nobody listens
    counter = [Counter("signup-ip:192.0.2.1/30/60/1", 30, 2**40)]
    assert gone.take(counter) == ([0], True)
    assert gone.take(counter) == ([1], True), "counted in memory"
    gone.give_back(counter)
    assert gone.take(counter) == ([1], True), "and given back there"

    tried: list[str] = []
    monkeypatch.setattr(gone.primary, "take", lambda c: tried.append("take") or ([7], True))
    assert gone.take(counter) == ([2], True) and not tried, "not tried again at once"

    clock = limitstores.time.monotonic() + limitstores.RETRY
    monkeypatch.setattr(limitstores.time, "monotonic", lambda: clock)
    assert gone.take(counter) == ([7], True) and tried == ["take"], "Redis again after RETRY"


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


def test_a_request_that_fails_gives_back_what_it_took(
    limited: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
):
    client = limited().test_client()

    def broken(*args, **kwargs):
        raise RuntimeError("the signup fell over")

    with monkeypatch.context() as patch:
        patch.setattr("service.web.api.sign_up", broken)
        failed = api_signup(client, "ann@example.com")
    assert failed.status_code == 500
    assert failed.headers["X-RateLimit-Remaining"] == "5", "an error page carries the counts"
    answer = api_signup(client, "ann@example.com")
    assert answer.status_code == 202
    assert answer.headers["X-RateLimit-Remaining"] == "4", "5 an hour, one used"


def test_giving_back_after_the_window_ended_leaves_no_key(redis_db: str):
    store, stored = RedisStore(redis_db), redis.Redis.from_url(redis_db)
    counter = [Counter("address:x/5/3600/1", 5, 2**40)]
    store.take(counter)
    stored.delete("LIMITS:address:x/5/3600/1")  # the window ended and Redis let the key go
    store.give_back(counter)
    assert stored.get("LIMITS:address:x/5/3600/1") is None

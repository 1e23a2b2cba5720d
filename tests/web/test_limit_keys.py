"""Rate-limit keys that would name a person are hashed: not in Redis, not in log lines."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
import redis
import time_machine

from service.people import owners
from tests.helpers import CSRF, OWNER, api_signup

START = datetime(2027, 4, 5, 10, 0, tzinfo=UTC)
VICTIM = "victim@example.com"


def refused_login(client):
    page = client.get("/login").get_data(as_text=True)
    data = {"csrf_token": CSRF.search(page).group(1), "email": OWNER[0], "password": "wrong"}
    return client.post("/login", data=data)


def test_limited_addresses_appear_nowhere(limited, redis_db, caplog: pytest.LogCaptureFixture):
    app = limited(REDIS_URL=redis_db)
    with app.app_context():
        owners.create(*OWNER)
    client = app.test_client()
    with time_machine.travel(START, tick=False), caplog.at_level(logging.INFO):
        for _ in range(5):
            assert api_signup(client, VICTIM).status_code == 202
        assert api_signup(client, VICTIM).status_code == 429
        for _ in range(5):
            assert refused_login(client).status_code == 422
        assert refused_login(client).status_code == 429
    breaches = [r.getMessage() for r in caplog.records if r.name == "service.web.ratelimits"]
    assert any("(address:" in line for line in breaches), breaches
    assert any("(owner-login:" in line for line in breaches), breaches
    stored = [key.decode() for key in redis.Redis.from_url(redis_db).scan_iter("LIMITS*")]
    assert any("address:" in key for key in stored), stored
    for text in [*breaches, *stored]:
        assert VICTIM not in text and OWNER[0] not in text, text

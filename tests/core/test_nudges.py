"""The after-commit nudge: queued ids go to the broker once the transaction commits, and
never after a rollback. Read back from the embedded broker's folder, message by message, or
with REDIS_URL from the Redis list the worker's consumer takes them from."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import redis
from flask import Flask

from service.core import nudge_list
from service.core.broker import DELIVER
from service.core.extensions import db
from service.core.nudges import queue_nudge
from service.core.settings import settings_of
from tests.conftest import free_port, make_app


def nudged(app: Flask) -> list[int]:
    """The email ids nudged so far: with REDIS_URL, those waiting in the Redis list; without
    (the test env's default), every deliver task in the embedded broker's folder, where the
    producer writes one file per message."""
    url = settings_of(app).redis_url
    if url:
        assert nudge_list.sender(app, url).flush()  # what the requests handed over, pushed
        return sorted(int(i) for i in redis.Redis.from_url(url).lrange(nudge_list.NUDGES, 0, -1))
    folder: Path = settings_of(app).broker_folder
    ids = []
    for path in sorted(folder.glob("*.msg")):
        message = json.loads(path.read_text())
        assert message["headers"]["task"] == DELIVER
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        ids.extend(args)
    return sorted(ids)


def test_a_commit_sends_what_was_queued_once(app: Flask):
    with app.app_context():
        queue_nudge([7, 8])
        assert nudged(app) == []  # nothing before the commit
        db.session.commit()
        assert nudged(app) == [7, 8]
        db.session.commit()  # the next commit has nothing queued
    assert nudged(app) == [7, 8]


def test_a_rollback_drops_what_was_queued(app: Flask):
    with app.app_context():
        queue_nudge([7])
        db.session.rollback()
        db.session.commit()
    with app.app_context():
        queue_nudge([8])
        db.session.close()  # the end of a request that never committed
        db.session.commit()
    assert nudged(app) == []


def test_the_signup_nudges_after_its_commit(app: Flask):
    client = app.test_client()
    answer = client.post("/api/subscribe", json={"email": "ann@example.com", "consent": True})
    assert answer.status_code == 202
    [email_id] = nudged(app)
    assert client.post("/api/subscribe", json={"email": "bad", "consent": True}).status_code == 422
    assert nudged(app) == [email_id]


@pytest.fixture
def redis_app(env: dict[str, str], redis_db: str) -> Flask:
    return make_app({**env, "REDIS_URL": redis_db})


@pytest.mark.redis
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_with_redis_a_commit_pushes_the_ids_onto_the_list_and_no_celery_task(redis_app: Flask):
    with redis_app.app_context():
        queue_nudge([7, 8])
        db.session.rollback()
        queue_nudge([9, 10])
        assert nudged(redis_app) == []
        db.session.commit()
    assert nudged(redis_app) == [9, 10]
    assert not redis.Redis.from_url(settings_of(redis_app).redis_url or "").llen("celery")


@pytest.mark.redis
def test_take_gives_the_oldest_first_each_once_and_at_most_what_was_asked(redis_db: str):
    source = nudge_list.client(redis_db)
    source.rpush(nudge_list.NUDGES, 1, 2, 1, 3, 4)
    assert nudge_list.take(source, 3, wait=1) == [1, 2]  # 1, 2, 1: the repeat goes once
    assert nudge_list.take(source, 10, wait=1) == [3, 4]
    assert nudge_list.take(source, 10, wait=0.01) == []


@pytest.mark.redis
def test_take_holds_the_batch_while_the_workers_are_busy(redis_db: str):
    """Ids that come while no worker could start on the first join its batch."""
    source = nudge_list.client(redis_db)
    source.rpush(nudge_list.NUDGES, 1)
    looks = []

    def busy() -> bool:
        looks.append(1)
        if len(looks) == 1:
            source.rpush(nudge_list.NUDGES, 2, 3)  # signups meanwhile
            return True
        return False

    assert nudge_list.take(source, 10, wait=1, busy=busy) == [1, 2, 3]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_with_redis_down_the_commit_stands_and_the_nudge_is_only_logged(env, caplog):
    url = f"redis://127.0.0.1:{free_port()}/0"
    app = make_app({**env, "REDIS_URL": url})
    client = app.test_client()
    answer = client.post("/api/subscribe", json={"email": "ann@example.com", "consent": True})
    assert answer.status_code == 202
    assert nudge_list.sender(app, url).flush()  # the sender tried, failed, and dropped them
    assert "could not nudge the worker" in caplog.text
    with app.app_context():
        assert db.session.scalar(db.text("SELECT count(*) FROM scheduled_email")) == 1

"""The worker's nudge consumer: ids the web app pushed become DELIVER_BATCH tasks for the pool,
and a Redis failure does not end the consumer."""

from __future__ import annotations

import base64
import json

import pytest
import redis
from celery import Celery

from service.core import nudge_list
from service.core.broker import DELIVER_BATCH
from tests.procs import wait_until
from worker import nudges
from worker.nudges import NudgeConsumer

pytestmark = pytest.mark.redis


def producer(redis_db: str) -> Celery:
    celery = Celery("leadmagnet", set_as_current=False)
    celery.conf.update(broker_url=redis_db, task_default_queue="celery")
    return celery


def batches(redis_db: str) -> list[list[int]]:
    """The ids of each DELIVER_BATCH task waiting in the Celery queue, oldest first."""
    found = []
    for raw in reversed(redis.Redis.from_url(redis_db).lrange("celery", 0, -1)):
        message = json.loads(raw)
        assert message["headers"]["task"] == DELIVER_BATCH
        (ids,), _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        found.append(ids)
    return found


def consumed(consumer: NudgeConsumer, redis_db: str, count: int) -> list[list[int]]:
    consumer.start()
    try:
        assert wait_until(lambda: len(batches(redis_db)) >= count, 10, 0.02)
    finally:
        consumer.stop()
        consumer.join(timeout=5)
    return batches(redis_db)


def test_the_pushed_ids_become_one_batch_task(redis_db: str):
    nudge_list.client(redis_db).rpush(nudge_list.NUDGES, 4, 5, 6)
    consumer = NudgeConsumer(producer(redis_db), redis_db)
    assert consumed(consumer, redis_db, 1) == [[4, 5, 6]]
    assert not redis.Redis.from_url(redis_db).llen(nudge_list.NUDGES)


def test_a_redis_failure_is_survived(redis_db: str, monkeypatch: pytest.MonkeyPatch):
    failures = []
    take = nudge_list.take

    def failing_once(*args: object, **kwargs: object) -> list[int]:
        if not failures:
            failures.append(1)
            raise redis.ConnectionError("Redis went away")
        return take(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(nudge_list, "take", failing_once)
    monkeypatch.setattr(nudges, "PAUSE", 0.01)
    nudge_list.client(redis_db).rpush(nudge_list.NUDGES, 7)
    consumer = NudgeConsumer(producer(redis_db), redis_db)
    assert consumed(consumer, redis_db, 1) == [[7]]
    assert failures == [1]


def test_the_pool_counts_as_busy_while_a_task_waits_in_the_queue(redis_db: str):
    consumer = NudgeConsumer(producer(redis_db), redis_db)
    assert not consumer.pool_busy()
    producer(redis_db).send_task(DELIVER_BATCH, args=[[1]])
    assert consumer.pool_busy()

"""The Celery app, bound to the Flask app so every task runs in an app context."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from functools import lru_cache, partial
from pathlib import Path

from celery import Celery, Task
from celery.signals import setup_logging, worker_init, worker_ready, worker_shutdown
from flask import Flask
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from service import create_app
from service.core import logs, metrics
from service.core.broker import celery_config
from service.core.extensions import db
from service.core.settings import settings_of
from service.insights.scrape import registry
from service.sending.context import transport_of

from .nudges import NudgeConsumer
from .scheduler import LockedScheduler

log = logging.getLogger(__name__)


def bind(flask_app: Flask) -> Celery:
    """A Celery app whose tasks push `flask_app`'s context; installed as its producer too."""

    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            with flask_app.app_context():
                return self.run(*args, **kwargs)

    settings = settings_of(flask_app)
    celery = Celery("leadmagnet", task_cls=FlaskTask)
    celery.conf.update(celery_config(settings))
    if not settings.database_url.startswith("sqlite"):
        # Any number of beats may run; the one holding the scheduler lock sends. (SQLite is
        # one machine's database: its one beat needs no lock.)
        celery.conf.beat_scheduler = partial(LockedScheduler, settings=settings)
    flask_app.extensions["celery"] = celery
    from . import tasks

    tasks.register(celery, flask_app)

    @setup_logging.connect(weak=False)
    def _logging(loglevel: int | None = None, **_: object) -> None:
        # Connected, this replaces Celery's own set-up: lines keep the service's format.
        logs.configure(settings_of(flask_app).log_format, loglevel or logging.INFO)

    @worker_init.connect(weak=False)
    def _metrics_server(sender: object = None, **_: object) -> None:
        port = settings_of(flask_app).metrics_port
        if port is not None:
            forks = "prefork" in str(getattr(sender, "pool_cls", "prefork")).lower()
            start_metrics_server(flask_app, port, forks)

    consumers: list[NudgeConsumer] = []

    @worker_ready.connect(weak=False)
    def _announce_ready(**_: object) -> None:
        if settings.redis_url:
            # In the main process, beside the pool: the pool runs the tasks it publishes.
            consumers.append(NudgeConsumer(celery, settings.redis_url))
            consumers[-1].start()
        # `leadmagnet serve` waits for this before it opens the web app, so that the first
        # signup's nudge finds a worker already listening.
        ready_marker(flask_app).touch()

    @worker_shutdown.connect(weak=False)
    def _close_smtp(**_: object) -> None:
        for consumer in consumers:
            consumer.stop()
        transport_of(flask_app).close()

    return celery


def ready_marker(flask_app: Flask) -> Path:
    return settings_of(flask_app).instance_path / "worker.ready"


def start_metrics_server(flask_app: Flask, port: int, forks: bool = False) -> None:
    """Prometheus' own HTTP server in the worker's main process, started before the pool
    forks: a worker in a container of its own can be scraped without a web app beside it."""
    from prometheus_client import start_http_server

    if forks and metrics.multiprocess_folder() is None:
        # Prefork children count sends in their own memory, which this server cannot see.
        log.warning(
            "METRICS_PORT with the prefork pool needs %s: without it, sends go uncounted",
            metrics.MULTIPROC_VARIABLE,
        )
    # Scrapes read the database from this (parent) process: a pool child forked later must
    # not inherit those pooled connections, so it starts with an empty pool of its own.
    os.register_at_fork(after_in_child=partial(_empty_pool, flask_app))
    try:
        start_http_server(port, registry=between_forks(registry(flask_app)))
    except OSError as exc:
        # Sending mail matters more than being scraped: say so, and go on.
        log.error("metrics server not started on port %s: %s", port, exc)
        return
    log.info("metrics served on port %s", port)


class _BetweenForks(Collector):
    def __init__(self, scrape: CollectorRegistry, lock: threading.Lock) -> None:
        self.scrape, self.lock = scrape, lock

    def collect(self) -> Iterable[Metric]:
        with self.lock:
            return list(self.scrape.collect())


def between_forks(scrape: CollectorRegistry) -> CollectorRegistry:
    """The scrape, each run whole between two forks of this process: a prefork child forked
    while a scrape's thread is inside SQLite would inherit SQLite's process-wide state as
    that thread held it (a mutex: the child hangs at its first connection; the write lock,
    which every transaction here takes: each write waits out the busy timeout and fails)."""
    lock = threading.Lock()
    # The child's copy of the lock was taken at the fork: it releases it too.
    os.register_at_fork(
        before=lock.acquire, after_in_parent=lock.release, after_in_child=lock.release
    )
    guarded = CollectorRegistry(auto_describe=False)
    guarded.register(_BetweenForks(scrape, lock))
    return guarded


def _empty_pool(flask_app: Flask) -> None:
    with flask_app.app_context():
        db.engine.dispose(close=False)  # close=False: the parent's connections stay its own


@lru_cache(maxsize=1)
def celery_app() -> Celery:
    return bind(create_app())

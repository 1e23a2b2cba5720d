"""The message broker: Celery configuration, and the web app's nudge of the worker."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from celery import Celery
from flask import Flask

from . import nudge_list
from .settings import Settings, settings_of

log = logging.getLogger(__name__)
DELIVER = "leadmagnet.deliver"
DELIVER_BATCH = "leadmagnet.deliver_batch"
DISPATCH = "leadmagnet.dispatch"
HOUSEKEEPING = "leadmagnet.housekeeping"


def celery_config(settings: Settings) -> dict:
    """One configuration for producer, worker and beat, from the settings."""
    config: dict = {
        "broker_url": settings.broker_url,
        "task_ignore_result": True,
        "result_backend": None,
        # The database lease, not the broker, makes a lost send come back; these only make
        # sure the broker redelivers a task whose worker died instead of dropping it.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 2,
        "worker_hijack_root_logger": False,
        "beat_schedule_filename": str(settings.instance_path / "celerybeat-schedule"),
        "beat_schedule": {
            "dispatch": {"task": DISPATCH, "schedule": settings.dispatch_interval},
            "housekeeping": {"task": HOUSEKEEPING, "schedule": 3600},
        },
    }
    if settings.redis_url:
        config["broker_transport_options"] = {
            "socket_connect_timeout": 2,
            "visibility_timeout": 3600,
        }
    else:
        folder = str(settings.broker_folder)
        config["broker_transport_options"] = {
            "data_folder_in": folder,
            "data_folder_out": folder,
            "processed_folder": str(settings.instance_path / "broker-processed"),
            "control_folder": str(settings.instance_path / "broker-control"),
            "store_processed": False,
            "polling_interval": 0.2,
        }
    return config


def prepare_folders(settings: Settings) -> None:
    """The embedded transport's folders must exist before a worker or producer uses them."""
    if not settings.redis_url:
        for name in ("broker", "broker-processed", "broker-control"):
            (settings.instance_path / name).mkdir(parents=True, exist_ok=True)


def producer(app: Flask) -> Celery:
    """The Celery app used to send tasks; the worker installs its own bound one instead."""
    celery = app.extensions.get("celery")
    if celery is None:
        settings = settings_of(app)
        celery = Celery("leadmagnet", set_as_current=False)
        celery.conf.update(celery_config(settings))
        # A nudge is best effort: with the broker down, fail on the first refused connection
        # rather than retry it for broker_connection_timeout while a web worker waits.
        options = celery.conf.broker_transport_options
        celery.conf.broker_transport_options = {**options, "max_retries": 0}
        app.extensions["celery"] = celery
    return celery


def nudge(app: Flask, email_ids: Iterable[int]) -> None:
    """Ask the worker to send now. Failure is harmless: the next scheduler pass finds the row.
    With Redis, the ids go to the list the worker's consumer takes in batches (nudge_list);
    on the embedded transport, one Celery task each."""
    ids = list(email_ids)
    url = settings_of(app).redis_url
    try:
        if url:
            nudge_list.sender(app, url).send(ids)
            return
        celery = producer(app)
        for email_id in ids:
            celery.send_task(DELIVER, args=[email_id], retry=False)
    except Exception as exc:  # any broker failure; the database still holds the schedule
        log.warning("could not nudge the worker for emails %s: %s", ids, exc)


def dispatch_now(app: Flask) -> None:
    """Ask a worker for a scheduler pass now (a broadcast just started) rather than at the
    beat's next one. Failure is harmless: the beat's pass comes anyway."""
    try:
        producer(app).send_task(DISPATCH, retry=False)
    except Exception as exc:  # any broker failure; the database holds the schedule
        log.warning("could not ask the worker for a scheduler pass: %s", exc)

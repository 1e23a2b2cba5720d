"""The Celery app, bound to the Flask app so every task runs in an app context."""

from __future__ import annotations

from functools import lru_cache

from celery import Celery, Task
from celery.signals import worker_shutdown
from flask import Flask

from service import create_app, runtime
from service.broker import celery_config


def bind(flask_app: Flask) -> Celery:
    """A Celery app whose tasks push `flask_app`'s context; installed as its producer too."""

    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            with flask_app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery("leadmagnet", task_cls=FlaskTask)
    celery.conf.update(celery_config(runtime.settings(flask_app)))
    flask_app.extensions["celery"] = celery
    from . import tasks

    tasks.register(celery)

    @worker_shutdown.connect(weak=False)
    def _close_smtp(**_: object) -> None:
        runtime.transport(flask_app).close()

    return celery


@lru_cache(maxsize=1)
def celery_app() -> Celery:
    return bind(create_app())

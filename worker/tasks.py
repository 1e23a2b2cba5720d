"""Thin tasks: each builds the context once, then calls the service with ids."""

from __future__ import annotations

from celery import Celery
from celery.worker import state as worker_state
from flask import Flask

from service.core.broker import DELIVER, DELIVER_BATCH, DISPATCH, HOUSEKEEPING
from service.insights import rollup
from service.people import housekeeping
from service.sending import delivery, dispatch
from service.sending.context import for_task

HANDOFF_CHUNK = 50


def register(celery: Celery, flask_app: Flask) -> None:
    @celery.task(name=DELIVER)
    def deliver(email_id: int) -> str:
        return delivery.deliver(for_task(flask_app), email_id)

    @celery.task(name=DELIVER_BATCH)
    def deliver_batch(email_ids: list[int]) -> int:
        def stopping() -> bool:
            # Celery sets these to an exit code (0 for a warm shutdown), so test for None.
            return worker_state.should_stop is not None or worker_state.should_terminate is not None

        # One content snapshot for the whole batch.
        return dispatch.deliver_batch(for_task(flask_app), email_ids, stopping)

    @celery.task(name=DISPATCH)
    def run_dispatch() -> int:
        def handoff(ids: list[int]) -> None:
            for start in range(0, len(ids), HANDOFF_CHUNK):
                celery.send_task(DELIVER_BATCH, args=[ids[start : start + HANDOFF_CHUNK]])

        ctx = for_task(flask_app)
        handed = dispatch.run_pass(ctx, handoff)
        rollup.fold(ctx.now())  # keeps the dashboard's read of unfolded deltas short
        return handed

    @celery.task(name=HOUSEKEEPING)
    def run_housekeeping() -> int:
        return housekeeping.run(for_task(flask_app))

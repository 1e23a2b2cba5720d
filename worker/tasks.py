"""Thin tasks: each takes ids and calls the service."""

from __future__ import annotations

from celery import Celery
from celery.worker import state as worker_state

from service import delivery, dispatch, housekeeping
from service.broker import DELIVER, DELIVER_BATCH, DISPATCH, HOUSEKEEPING

HANDOFF_CHUNK = 50


def register(celery: Celery) -> None:
    @celery.task(name=DELIVER)
    def deliver(email_id: int) -> str:
        return delivery.deliver(email_id)

    @celery.task(name=DELIVER_BATCH)
    def deliver_batch(email_ids: list[int]) -> int:
        def stopping() -> bool:
            # Celery sets these to an exit code (0 for a warm shutdown), so test for None.
            return worker_state.should_stop is not None or worker_state.should_terminate is not None

        return dispatch.deliver_batch(email_ids, stopping)

    @celery.task(name=DISPATCH)
    def run_dispatch() -> int:
        def handoff(ids: list[int]) -> None:
            for start in range(0, len(ids), HANDOFF_CHUNK):
                celery.send_task(DELIVER_BATCH, args=[ids[start : start + HANDOFF_CHUNK]])

        return dispatch.run_pass(handoff)

    @celery.task(name=HOUSEKEEPING)
    def run_housekeeping() -> int:
        return housekeeping.purge_unconfirmed()

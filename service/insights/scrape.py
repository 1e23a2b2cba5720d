"""What one Prometheus scrape shows: the counters (of every process, with a multiprocess
folder) and the oldest-due gauge, read from the database at each scrape."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from flask import Flask
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy.exc import SQLAlchemyError

from ..core.clock import utcnow
from ..core.metrics import multiprocess_folder
from ..sending.broadcast_progress import live_ids, progress
from .stats import oldest_due_unsent

log = logging.getLogger(__name__)


class OldestDueEmail:
    """leadmagnet_oldest_due_email_age_seconds: the dashboard's "most overdue email", the
    same function, so the alert and the owner's view never disagree (0: nothing waits)."""

    NAME = "leadmagnet_oldest_due_email_age_seconds"
    HELP = (
        "Seconds the oldest email not yet sent (waiting, or held by a worker) has waited "
        "past its due time (0: none is late)."
    )

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        # Its own app context: the worker's metrics server scrapes from a thread of its own.
        with self.app.app_context():
            try:
                late = oldest_due_unsent(utcnow())
            except SQLAlchemyError as exc:
                # The counters are still worth a scrape; /readyz reports the database.
                log.warning("oldest due email not measured: %s", type(exc).__name__)
                return
        age = late.total_seconds() if late is not None else 0.0
        yield GaugeMetricFamily(self.NAME, self.HELP, value=max(age, 0.0))


class BroadcastProgress:
    """leadmagnet_broadcast_emails{broadcast,outcome} and leadmagnet_broadcast_rate{broadcast}:
    each live (sending or paused) broadcast's progress, the `broadcast status` query's."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        emails = GaugeMetricFamily(
            "leadmagnet_broadcast_emails",
            "Recipients of each live broadcast by outcome: sent, failed, skipped, remaining.",
            labels=["broadcast", "outcome"],
        )
        rates = GaugeMetricFamily(
            "leadmagnet_broadcast_rate",
            "Emails per second each live broadcast sent over the last minute.",
            labels=["broadcast"],
        )
        with self.app.app_context():
            try:
                now = utcnow()
                for broadcast_id in live_ids():
                    found = progress(broadcast_id, now)
                    if found is None:
                        continue
                    name = str(broadcast_id)
                    for outcome in ("sent", "failed", "skipped", "remaining"):
                        emails.add_metric([name, outcome], getattr(found, outcome))
                    rates.add_metric([name], found.rate)
            except SQLAlchemyError as exc:
                log.warning("broadcast progress not measured: %s", type(exc).__name__)
                return
        yield emails
        yield rates


def registry(app: Flask) -> CollectorRegistry:
    """What a scrape shows: the counters of every process writing to the multiprocess
    folder (or of this process alone, without one), and the gauge read now."""
    scrape = CollectorRegistry()
    folder = multiprocess_folder()
    if folder:
        MultiProcessCollector(scrape, path=folder)
    else:
        scrape.register(REGISTRY)
    scrape.register(OldestDueEmail(app))
    scrape.register(BroadcastProgress(app))
    return scrape

"""Prometheus metrics: the counters the use cases bump, and what one scrape shows."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from flask import Flask
from prometheus_client import REGISTRY, CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from .clock import utcnow
from .extensions import db
from .models import EmailStatus, Outcome, ScheduledEmail

log = logging.getLogger(__name__)
# prometheus_client picks its multiprocess mode from this variable when it is imported, in
# every process (gunicorn and Celery children included): the scrape must follow the same.
MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
FAILURE_REASONS = (Outcome.DEFERRED, Outcome.BOUNCED, Outcome.FAILED)
NO_STEP = "none"

SIGNUPS = Counter(
    "leadmagnet_signups",
    "Signups accepted (new, repeated or returning), each recorded with its consent.",
)
EMAILS_SENT = Counter(
    "leadmagnet_emails_sent", "Emails the mail server accepted, by step.", ["step"]
)
SEND_FAILURES = Counter(
    "leadmagnet_send_failures",
    "Sends that did not go: deferred (tried again later), bounced (the recipient was "
    "refused), failed (the server refused the sender or the message).",
    ["reason"],
)
UNSUBSCRIBES = Counter(
    "leadmagnet_unsubscribes",
    "Unsubscribes, by the step of the last email sent before (none: before any).",
    ["step"],
)
BOUNCES = Counter(
    "leadmagnet_bounces", "Bounces (hard and soft) reported by mail providers' webhooks."
)
COMPLAINTS = Counter(
    "leadmagnet_complaints", "Spam complaints reported by mail providers' webhooks."
)
for _reason in FAILURE_REASONS:
    SEND_FAILURES.labels(_reason)  # each reason shows (as 0) before its first failure


def signed_up() -> None:
    SIGNUPS.inc()


def email_sent(step: str) -> None:
    EMAILS_SENT.labels(step).inc()


def send_failed(reason: str) -> None:
    SEND_FAILURES.labels(reason).inc()


def unsubscribed(last_step: str | None) -> None:
    UNSUBSCRIBES.labels(last_step or NO_STEP).inc()


def bounce_reported() -> None:
    BOUNCES.inc()


def complaint_reported() -> None:
    COMPLAINTS.inc()


class OldestDueEmail:
    """leadmagnet_oldest_due_email_age_seconds, read from the database at each scrape: how
    long the most overdue pending email has waited past its due time (0: nothing waits)."""

    NAME = "leadmagnet_oldest_due_email_age_seconds"
    HELP = "Seconds the oldest pending email has waited past its due time (0: none is due)."

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        # Its own app context: the worker's metrics server scrapes from a thread of its own.
        with self.app.app_context():
            now = utcnow()
            try:
                # One lookup in the partial index of pending rows (ix_scheduled_email_due).
                oldest = db.session.scalar(
                    select(func.min(ScheduledEmail.due_at)).where(
                        ScheduledEmail.status == EmailStatus.PENDING, ScheduledEmail.due_at <= now
                    )
                )
            except SQLAlchemyError as exc:
                # The counters are still worth a scrape; /readyz reports the database.
                log.warning("oldest due email not measured: %s", type(exc).__name__)
                return
        age = (now - oldest).total_seconds() if oldest is not None else 0.0
        yield GaugeMetricFamily(self.NAME, self.HELP, value=max(age, 0.0))


def multiprocess_folder() -> str | None:
    return os.environ.get(MULTIPROC_VARIABLE) or None


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
    return scrape


def fresh_folder(path: Path) -> Path:
    """An empty multiprocess folder: files left by an earlier run would add its counts to
    this one's."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path

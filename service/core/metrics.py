"""Prometheus counters the use cases bump, and the folder processes share them through."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prometheus_client import Counter

from .models import Outcome

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


def multiprocess_folder() -> str | None:
    return os.environ.get(MULTIPROC_VARIABLE) or None


def fresh_folder(path: Path) -> Path:
    """An empty multiprocess folder: files left by an earlier run would add its counts to
    this one's."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path

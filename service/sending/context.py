"""What a use case is handed: the settings, the content snapshot in force, the sender, the
mail transport and the clock. Built once per request (web/context.py) and once per task
(worker/tasks.py), then passed on: nothing below reaches for the app or re-reads the file."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Protocol

from flask import Flask

from ..content.sequence import Sequence, SequenceError, load_sequence
from ..core.clock import utcnow
from ..core.settings import Settings, settings_of
from .transport import SendResult, make_transport

log = logging.getLogger(__name__)
CONTENT = "leadmagnet.content"  # the last good sequence, kept on the app
TRANSPORT = "leadmagnet.transport"  # one per process: the SMTP connection is reused


class Transport(Protocol):
    """Where mail goes: SmtpTransport or FileTransport (or a test's own). send() raises
    transport.DeliveryError for a send that did not happen."""

    def send(
        self, msg: EmailMessage, sender: str, recipient: str, step: str | None = None
    ) -> SendResult:
        """Send (or write) the message; `step` names it where the transport shows names."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Context:
    settings: Settings
    content: Sequence  # one snapshot: a task renders and schedules from this same version
    sender: str  # MAIL_FROM, or the sequence's [sender] from
    transport: Transport
    clock: Callable[[], datetime] = utcnow

    def now(self) -> datetime:
        return self.clock()

    def for_magnet(self, magnet_id: int | None) -> Context:
        """This context with that magnet's published content (and its sender) in force, so
        code below works on `ctx.content` whichever magnet an email belongs to. None: the
        default magnet. (Until magnets carry content, every magnet is the default.)"""
        return self


def for_app(app: Flask) -> Context:
    """A context for one request or task: the content as it is now, read once."""
    settings = settings_of(app)
    content = current_content(app)
    return Context(
        settings=settings,
        content=content,
        sender=settings.mail_from or content.mail_from,
        transport=transport_of(app),
    )


def current_content(app: Flask) -> Sequence:
    """The sequence file as it is now: an edit takes effect without a restart, and an edit
    that breaks the file keeps the last good version running (and says so in the log)."""
    path = settings_of(app).sequence_file
    try:
        current = load_sequence(path, path.parent, path.stat().st_mtime_ns)
    except (SequenceError, OSError) as exc:
        last_good: Sequence | None = app.extensions.get(CONTENT)
        if last_good is None:
            raise
        log.error("the edited sequence file is not used: %s", exc)
        return last_good
    app.extensions[CONTENT] = current
    return current


def transport_of(app: Flask) -> Transport:
    """Created on first use, so a forked worker child opens its own SMTP connection."""
    found: Transport | None = app.extensions.get(TRANSPORT)
    if found is None:
        settings = settings_of(app)
        found = make_transport(settings.email_url, settings.dkim)
        app.extensions[TRANSPORT] = found
    return found

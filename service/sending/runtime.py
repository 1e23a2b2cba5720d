"""Per-process state hung on the Flask app: settings, the sequence, the mail transport."""

from __future__ import annotations

import logging

from flask import Flask, current_app

from ..content.sequence import Sequence, SequenceError, load_sequence
from ..core.settings import Settings
from .transport import FileTransport, SmtpTransport, make_transport

log = logging.getLogger(__name__)


def settings(app: Flask | None = None) -> Settings:
    return (app or current_app).extensions["leadmagnet.settings"]


def sequence(app: Flask | None = None) -> Sequence:
    """The sequence file as it is now: an edit takes effect without a restart, and an edit
    that breaks the file keeps the last good version running (and says so in the log)."""
    app = app or current_app
    path = settings(app).sequence_file
    try:
        current = load_sequence(path, path.parent, path.stat().st_mtime_ns)
    except (SequenceError, OSError) as exc:
        last_good = app.extensions.get("leadmagnet.sequence")
        if last_good is None:
            raise
        log.error("the edited sequence file is not used: %s", exc)
        return last_good
    app.extensions["leadmagnet.sequence"] = current
    return current


def mail_from(app: Flask | None = None) -> str:
    return settings(app).mail_from or sequence(app).mail_from


def transport(app: Flask | None = None) -> FileTransport | SmtpTransport:
    """Created on first use, so a forked worker child opens its own SMTP connection."""
    app = app or current_app
    found = app.extensions.get("leadmagnet.transport")
    if found is None:
        config = settings(app)
        found = make_transport(config.email_url, config.dkim)
        app.extensions["leadmagnet.transport"] = found
    return found

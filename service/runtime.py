"""Per-process state hung on the Flask app: settings, the sequence, the mail transport."""

from __future__ import annotations

from flask import Flask, current_app

from .rendering import TEMPLATES_DIR
from .sequence import Sequence, load_sequence
from .settings import Settings
from .transport import FileTransport, SmtpTransport, make_transport


def settings(app: Flask | None = None) -> Settings:
    return (app or current_app).extensions["leadmagnet.settings"]


def sequence(app: Flask | None = None) -> Sequence:
    return load_sequence(settings(app).sequence_file, TEMPLATES_DIR)


def mail_from(app: Flask | None = None) -> str:
    return settings(app).mail_from or sequence(app).mail_from


def transport(app: Flask | None = None) -> FileTransport | SmtpTransport:
    """Created on first use, so a forked worker child opens its own SMTP connection."""
    app = app or current_app
    found = app.extensions.get("leadmagnet.transport")
    if found is None:
        found = app.extensions["leadmagnet.transport"] = make_transport(settings(app).email_url)
    return found

"""GET /outbox: the .eml files of a file:// EMAIL_URL, listed and shown (404 otherwise)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from ipaddress import ip_address
from pathlib import Path

from flask import Blueprint, abort, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from .. import runtime
from ..extensions import db
from .login import current_owner

bp = Blueprint("outbox", __name__)
LISTED = 200  # newest messages on the list page; the folder itself may hold thousands
# The page embeds email HTML (in a sandboxed srcdoc iframe, which inherits this policy):
# inline styles may render, nothing may run, load from elsewhere or submit anywhere.
CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)


@dataclass(frozen=True)
class Entry:
    name: str
    when: datetime
    to: str
    subject: str


@bp.before_request
def only_for_a_file_outbox() -> None:
    # With SMTP the folder is not where mail goes, and the page must not exist at all.
    if not runtime.settings().email_url.is_file:
        abort(404)
    # The outbox holds every subscriber's email and unsubscribe link: only a signed-in
    # owner may read it, or, where OUTBOX_OPEN_LOCALLY says so, the machine itself (the
    # newcomer trying it out; the setting is refused together with TRUSTED_PROXIES).
    if runtime.settings().outbox_open_locally and _from_this_machine():
        return
    owner = current_owner()
    db.session.rollback()  # end the read: on SQLite it holds the write lock (BEGIN IMMEDIATE)
    if owner is None:
        abort(404)


def _from_this_machine() -> bool:
    try:
        return ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


@bp.after_request
def lock_down(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"  # unsubscribe tokens sit in the links
    response.headers["Cache-Control"] = "no-store"
    return response


def _folder() -> Path:
    return runtime.settings().email_url.path  # type: ignore[return-value]


def _files() -> dict[str, Path]:
    """The outbox's messages by file name: the only names the pages will open."""
    folder = _folder()
    if not folder.is_dir():
        return {}
    return {
        path.name: path
        for path in folder.iterdir()
        if path.suffix == ".eml"
        and not path.name.startswith(".")
        and not path.is_symlink()
        and path.is_file()
    }


def _parse(path: Path, headers_only: bool = False) -> EmailMessage:
    with path.open("rb") as handle:
        return BytesParser(policy=policy.default).parse(handle, headersonly=headers_only)  # type: ignore[return-value]


def _when(msg: EmailMessage, path: Path) -> datetime:
    try:
        stamp = msg["Date"].datetime if msg["Date"] else None
    except (AttributeError, ValueError, TypeError):
        stamp = None
    return stamp or datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _entry(name: str, path: Path) -> Entry:
    msg = _parse(path, headers_only=True)
    return Entry(
        name=name, when=_when(msg, path), to=str(msg["To"] or ""), subject=str(msg["Subject"] or "")
    )


@bp.get("/outbox")
def index() -> ResponseReturnValue:
    files = _files()
    newest = sorted(files.items(), key=lambda item: item[1].stat().st_mtime_ns, reverse=True)
    entries = [_entry(name, path) for name, path in newest[:LISTED]]
    return render_template(
        "outbox.html", entries=entries, total=len(files), folder=_folder(), listed=LISTED
    )


@bp.get("/outbox/<name>")
def message(name: str) -> ResponseReturnValue:
    path = _files().get(name)
    if path is None:  # "..", other folders, other files: only listed names are served
        abort(404)
    msg = _parse(path)
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    return render_template(
        "outbox_message.html",
        name=name,
        when=_when(msg, path),
        headers=list(msg.items()),
        subject=str(msg["Subject"] or "(no subject)"),
        text=text.get_content() if text is not None else None,
        html=html.get_content() if html is not None else None,
    )

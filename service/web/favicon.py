"""GET /favicon.ico: browsers ask for it on every site; a 404 fills logs and dev tools."""

from __future__ import annotations

from flask import Blueprint, current_app, send_from_directory
from flask.typing import ResponseReturnValue

bp = Blueprint("favicon", __name__)
MAX_AGE = 7 * 24 * 3600  # a week: it changes with a release, if ever


@bp.get("/favicon.ico")
def favicon() -> ResponseReturnValue:
    return send_from_directory(
        current_app.static_folder,  # type: ignore[arg-type]
        "favicon.ico",
        mimetype="image/vnd.microsoft.icon",
        max_age=MAX_AGE,
    )

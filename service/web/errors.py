"""Error answers: JSON under /api, a page elsewhere, and 503 (never 500) for a lost database
or file store."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask.globals import request_ctx
from flask.typing import ResponseReturnValue, ResponseValue
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException, SecurityError

from ..content.storage import StorageError
from ..core.extensions import db
from ..core.settings import settings_of

log = logging.getLogger(__name__)
MESSAGES = {
    400: "The request could not be understood.",
    404: "There is nothing here. The link may be incomplete.",
    405: "That method is not allowed here.",
    413: "The request is too large (16 KiB at most).",
    415: "Send JSON with Content-Type: application/json.",
    429: "Too many requests. Please wait a little and try again.",
    503: "The service is briefly unavailable. Please try again in a minute.",
}


def _answer(status: int, message: str) -> tuple[ResponseValue, int]:
    if request.path.startswith("/api/") or request.path.startswith("/webhooks/"):
        return jsonify({"error": message}), status
    return render_template("error.html", status=status, message=message), status


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> ResponseReturnValue:
        return _answer(400, "The form expired. Please go back, reload the page and try again.")

    @app.errorhandler(SecurityError)
    def untrusted_host(exc: SecurityError) -> ResponseReturnValue:
        # Flask refused the Host (TRUSTED_HOSTS) before routing, so the request has no URL
        # adapter; the page's relative links are built with one bound to a trusted name.
        request_ctx.url_adapter = app.url_map.bind(settings_of(app).host_names[0])
        return _answer(400, MESSAGES[400])

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        status = exc.code or 500
        response = _answer(status, MESSAGES.get(status, exc.description or "Error"))
        if status == 405 and exc.get_response().headers.get("Allow"):
            body, code = response
            return body, code, {"Allow": exc.get_response().headers["Allow"]}
        return response

    @app.errorhandler(OperationalError)
    @app.errorhandler(DBAPIError)
    def database_down(exc: Exception) -> ResponseReturnValue:
        db.session.rollback()
        log.error("database unavailable: %s", exc.__class__.__name__)
        return _answer(503, MESSAGES[503])

    @app.errorhandler(StorageError)
    def storage_down(exc: StorageError) -> ResponseReturnValue:
        log.error("storage unavailable: %s", exc)
        return _answer(503, MESSAGES[503])

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> ResponseReturnValue:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return _answer(500, "Something went wrong on our side. It has been logged.")

"""Retry-After only where it means "come back later": 429 and 503. Flask-Limiter's headers
put it on every answer of a rate-limited route, a 202 or a 422 too, where a client reads it
as an order to wait."""

from __future__ import annotations

from flask import Flask
from werkzeug.wrappers import Response

CARRIES_RETRY_AFTER = frozenset({429, 503})


def drop_stray_retry_after(response: Response) -> Response:
    if response.status_code not in CARRIES_RETRY_AFTER:
        response.headers.pop("Retry-After", None)
    return response


def register(app: Flask) -> None:
    # Flask runs app-wide after_request functions last-registered first, and the limiter
    # registered its own in init_app: the head of the list runs after everything else.
    app.after_request_funcs.setdefault(None, []).insert(0, drop_stray_retry_after)

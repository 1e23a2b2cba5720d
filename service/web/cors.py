"""CORS for the embedded form: /api/subscribe answers pages on ALLOWED_ORIGINS, no others."""

from __future__ import annotations

from flask import Flask
from flask_cors import CORS

from ..core.settings import settings_of

PREFLIGHT_MAX_AGE = 600  # seconds a browser may reuse a preflight's answer


def register(app: Flask) -> None:
    origins = list(settings_of(app).allowed_origins)
    if not origins:
        return  # no CORS headers at all: browsers keep other sites' pages out
    CORS(
        app,
        resources={
            "/api/subscribe": {
                "origins": origins,
                "methods": ["POST"],
                "allow_headers": ["Content-Type"],
                "max_age": PREFLIGHT_MAX_AGE,
                "supports_credentials": False,  # the form needs no cookie of ours
            }
        },
    )

"""Security headers on every response; a view or blueprint that sets its own keeps it."""

from __future__ import annotations

from flask import Flask, request
from werkzeug.wrappers import Response

# No inline script or style anywhere: every page loads site.css and its scripts as files.
CSP = (
    "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'; img-src 'self' data:; style-src 'self'"
)
HSTS = "max-age=31536000"
# Pages reached through a token in their URL: the token must not leave in a Referer.
TOKEN_PAGES = "links"


def headers_for(response: Response) -> dict[str, str]:
    found = {
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer" if request.blueprint == TOKEN_PAGES else "same-origin",
    }
    # The browser's own PDF viewer shows the guide under the response's policy, and
    # object-src 'none' can keep it from showing anything: a PDF needs no policy of ours.
    if response.mimetype != "application/pdf":
        found["Content-Security-Policy"] = CSP
    # Only over HTTPS (as seen through TRUSTED_PROXIES): over plain HTTP it means nothing,
    # and sent from a development server it would pin the browser to HTTPS for a year.
    if request.is_secure:
        found["Strict-Transport-Security"] = HSTS
    return found


def register(app: Flask) -> None:
    @app.after_request
    def secure(response: Response) -> Response:
        # App-wide after_request runs after the blueprints' own: what they set stays.
        for name, value in headers_for(response).items():
            response.headers.setdefault(name, value)
        return response

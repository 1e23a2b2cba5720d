"""GET /metrics: Prometheus' text format, for a scraper holding METRICS_TOKEN only."""

from __future__ import annotations

import hmac

from flask import Blueprint, abort, current_app, request
from flask.typing import ResponseReturnValue
from prometheus_client.exposition import choose_encoder
from werkzeug.wrappers import Response

from ..insights.scrape import registry
from .context import settings

bp = Blueprint("metrics", __name__)


def _bearer() -> str:
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    return credential.strip() if scheme.lower() == "bearer" else ""


@bp.get("/metrics")
def scrape() -> ResponseReturnValue:
    token = settings().metrics_token
    if token is None:
        abort(404)  # not configured: there is nothing here
    # Constant time: the comparison must not tell a guesser how much of the token was right.
    if not hmac.compare_digest(_bearer().encode(), token.encode()):
        return Response(
            "a bearer token is needed\n",
            401,
            {"WWW-Authenticate": 'Bearer realm="metrics"', "Cache-Control": "no-store"},
            mimetype="text/plain",
        )
    # Prometheus asks for OpenMetrics in Accept; other scrapers get the classic text format.
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encode(registry(current_app))  # collected now, in this app context
    return Response(body, 200, {"Cache-Control": "no-store"}, content_type=content_type)

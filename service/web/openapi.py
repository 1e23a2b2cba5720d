"""GET /api/openapi.json: the JSON API described as OpenAPI 3.1, for clients and fuzzers."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

bp = Blueprint("openapi", __name__)

ERRORS = {
    "type": "object",
    "required": ["errors"],
    "properties": {
        "errors": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
PROBLEM = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
}


def _problem(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": PROBLEM}}}


DOCUMENT = {
    "openapi": "3.1.0",
    "info": {
        "title": "leadmagnet",
        "version": "1",
        "description": "Sign up for the free guide. The same answer whatever the address's "
        "state: nothing here tells whether an address is subscribed.",
    },
    "paths": {
        "/api/subscribe": {
            "post": {
                "operationId": "subscribe",
                "summary": "Sign up: the guide is emailed at once, the drip follows.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["email", "consent"],
                                "properties": {
                                    "email": {
                                        "type": "string",
                                        "format": "email",
                                        "maxLength": 320,
                                    },
                                    "first_name": {"type": ["string", "null"], "maxLength": 100},
                                    "consent": {"type": "boolean", "const": True},
                                    "time_zone": {"type": ["string", "null"]},
                                    "page": {"type": ["string", "null"]},
                                    "magnet": {
                                        "type": ["string", "null"],
                                        "maxLength": 64,
                                        "description": "The slug of the lead magnet signed "
                                        "up for (its page is /m/<slug>); absent or null: the "
                                        "default magnet. An unknown or archived slug is a "
                                        "422 error on magnet.",
                                    },
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "202": {
                        "description": "Accepted (new, already subscribed or unsubscribed).",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["status"],
                                    "properties": {"status": {"const": "accepted"}},
                                }
                            }
                        },
                    },
                    "400": _problem("The body is not a JSON object."),
                    "413": _problem("The body is over 16 KiB."),
                    "415": _problem("The body is not JSON."),
                    "422": {
                        "description": "A field is invalid; one message per field.",
                        "content": {"application/json": {"schema": ERRORS}},
                    },
                    "429": _problem("Too many signups from this client or for this address."),
                    "503": _problem("The database is briefly unavailable."),
                },
            }
        }
    },
}


@bp.get("/api/openapi.json")
def openapi() -> ResponseReturnValue:
    return jsonify(DOCUMENT)

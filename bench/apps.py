"""The service plus two baseline endpoints, served by the same gunicorn for bench/signup."""

from __future__ import annotations

from flask import Flask, jsonify, request

from service import create_app as create_service_app
from service.capture.validation import validate_signup
from service.core.extensions import csrf


def create_app() -> Flask:
    app = create_service_app()

    @app.post("/_bench/validate")
    @csrf.exempt
    def validate_only():  # baseline (a): parse and validate the same body, nothing else
        data, errors = validate_signup(request.get_json(), from_json=True)
        return (jsonify({"status": "accepted"}), 202) if data else (jsonify(errors), 422)

    @app.get("/_bench/bare")
    def bare():  # baseline (b): the cheapest answer Flask gives
        return "ok"

    return app

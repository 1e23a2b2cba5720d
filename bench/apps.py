"""The service plus two baseline endpoints, served by the same gunicorn for bench/signup; and
the gunicorn command production runs, for every benchmark that serves the web app."""

from __future__ import annotations

import json
import re
from pathlib import Path

from flask import Flask, jsonify, request

from service import create_app as create_service_app
from service.capture.validation import validate_signup
from service.core.extensions import csrf

ROOT = Path(__file__).resolve().parent.parent


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


def production_gunicorn(gunicorn: str, port: int, app: str) -> list[str]:
    """The web command of the Dockerfile's CMD, as it is (workers, threads, timeouts, the
    access log: what production runs), bound to 127.0.0.1:port instead, serving `app`."""
    text = (ROOT / "Dockerfile").read_text()
    cmd = json.loads(re.search(r"^CMD (\[.*?\])", text, re.M | re.S).group(1).replace("\\\n", ""))
    if cmd[0] != "gunicorn":
        raise SystemExit(f"the Dockerfile's CMD is no longer gunicorn: {cmd}")
    options = cmd[1:-1]  # the last argument is the app
    at = options.index("--bind")
    options[at + 1] = f"127.0.0.1:{port}"
    return [gunicorn, *options, app]

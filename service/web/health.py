"""GET /healthz (database and broker answer) and GET /readyz (and mail can leave, the file
store answers, and the schema is the code's): 200, or 503 naming each failing part."""

from __future__ import annotations

import os

import redis
from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from ..core.extensions import db
from ..insights import readiness
from .context import settings as app_settings

bp = Blueprint("health", __name__)


def _database() -> str | None:
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
    except Exception as exc:
        db.session.rollback()
        return f"database unreachable: {type(exc).__name__}"
    return None


def _broker() -> str | None:
    settings = app_settings()
    if settings.redis_url:
        try:
            client = redis.Redis.from_url(
                settings.redis_url, socket_connect_timeout=1, socket_timeout=1
            )
            client.ping()
            client.close()
        except Exception as exc:
            return f"broker unreachable: {type(exc).__name__}"
        return None
    folder = settings.broker_folder
    if not (folder.is_dir() and os.access(folder, os.W_OK)):
        return f"broker folder not writable: {folder}"
    return None


def _answer(checks: dict[str, str | None]) -> ResponseReturnValue:
    failing = {name: problem for name, problem in checks.items() if problem}
    if failing:
        return jsonify({"status": "unavailable", "failing": failing}), 503
    return jsonify({"status": "ok", **dict.fromkeys(checks, "ok")}), 200


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Liveness, as the contract has it: the database and the broker answer."""
    return _answer({"database": _database(), "broker": _broker()})


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Readiness: send traffic here (and start a rollout's next step) only when this passes."""
    app = current_app
    database = _database()
    return _answer(
        {
            "database": database,
            "broker": _broker(),
            # The detail (server, port, error) goes to the log, not to anonymous callers.
            "email": "unreachable" if readiness.mail(app) else None,
            "storage": "unreachable" if readiness.storage(app) else None,
            # Without a database there is no schema to compare: one failing part, not two.
            "migrations": readiness.migrations(app) if database is None else None,
        }
    )

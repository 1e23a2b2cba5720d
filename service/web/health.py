"""GET /healthz: does the database answer, does the broker answer."""

from __future__ import annotations

import os

import redis
from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from .. import runtime
from ..extensions import db

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
    settings = runtime.settings()
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


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    checks = {"database": _database(), "broker": _broker()}
    failing = {name: problem for name, problem in checks.items() if problem}
    if failing:
        return jsonify({"status": "unavailable", "failing": failing}), 503
    return jsonify({"status": "ok", "database": "ok", "broker": "ok"}), 200

"""Celery glue: `celery -A worker worker|beat` finds the Celery app bound to the Flask app.

The app is built on first access (PEP 562), so importing this package reads no settings.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("app", "celery"):
        from .app import celery_app

        return celery_app()
    raise AttributeError(f"module 'worker' has no attribute {name!r}")

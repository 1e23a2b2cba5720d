"""Fixtures of the web tests: apps with the rate limits on (the suite's default is off)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from service.core.extensions import db
from tests.conftest import make_app


@pytest.fixture
def limited(env: dict[str, str]) -> Iterator[Callable[..., Flask]]:
    """Makes apps with rate limits on and the given settings besides; disposed at the end."""
    made: list[Flask] = []

    def make(**settings: str) -> Flask:
        app = make_app({**env, "RATELIMIT_ENABLED": "true", **settings})
        made.append(app)
        return app

    yield make
    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def limited_app(limited: Callable[..., Flask]) -> Flask:
    return limited()

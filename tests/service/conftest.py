"""Fixtures for the email tests: an app that renders and sends but needs no schema."""

from __future__ import annotations

import pytest
from flask import Flask

from service import create_app
from tests.conftest import SECRET

PUBLIC_URL = "https://news.example.org"


@pytest.fixture(scope="module")
def render_app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    """Rendering reads settings and the sequence file only: no database, so one engine."""
    folder = tmp_path_factory.mktemp("render")
    return create_app(
        {
            "INSTANCE_PATH": str(folder / "instance"),
            "DATABASE_URL": f"sqlite:///{folder / 'unused.sqlite3'}",
            "SECRET_KEY": SECRET,
            "EMAIL_URL": f"file://{folder / 'outbox'}",
            "PUBLIC_URL": PUBLIC_URL,
        }
    )

"""A worker task sees the version published a moment ago in another process, not the few
seconds' view of published versions that a web process keeps."""

from __future__ import annotations

import pytest
from flask import Flask

from service import create_app
from service.content import published
from service.content.magnets import default_magnet
from service.content.versions import files_of, new_version, published_version
from service.core.extensions import db
from service.sending.context import for_app, for_task
from service.sending.publish import ANY, publish


def publish_new_preheader(env: dict[str, str], preheader: str) -> None:
    """Publish from another app, as the editor's web process would."""
    other = create_app(env)
    with other.app_context():
        ctx = for_app(other)
        magnet = default_magnet()
        files = files_of(published_version(magnet))
        old = 'preheader = "Your free guide is ready to download."'
        assert old in files["sequence.toml"]
        files["sequence.toml"] = files["sequence.toml"].replace(old, f'preheader = "{preheader}"')
        version = new_version(magnet, files, "owner@example.com")
        publish(ctx, magnet, version, "owner@example.com", over=ANY)
        db.session.remove()
        db.engine.dispose()


def test_a_task_reads_what_was_just_published_elsewhere(
    app: Flask, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(published, "REFRESH", 3600.0)  # however slow the machine is
    with app.app_context():
        before = for_app(app).content
        db.session.remove()  # SQLite: let the other app take the write lock
        publish_new_preheader(env, "Fresh off the press.")
        assert for_app(app).content is before  # a web request may lag for REFRESH
        assert for_task(app).content.first.preheader == "Fresh off the press."

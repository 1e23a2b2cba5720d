"""Migration 0020 on a database filled before it: the figures whose counting changed are
recounted (complaints under the email named, a magnet's own downloads), the rest kept; its
downgrade counts them as 0013 did again."""

from __future__ import annotations

from flask import Flask
from flask_migrate import downgrade, upgrade

from service.capture import newcomer
from service.core.extensions import db
from service.migrations.frozen import figures_0013
from tests.core.test_migrations import bare_app  # noqa: F401 (the fixture)
from tests.insights.figure_story import kept, recounted, story


def migrate(app: Flask, revision: str, down: bool = False) -> None:
    with app.app_context():
        (downgrade if down else upgrade)(app.extensions["migrate"].directory, revision=revision)


def test_0020_recounts_the_figures_a_database_kept_before_it(bare_app: Flask, monkeypatch):  # noqa: F811
    migrate(bare_app, "0019")
    # The newcomer's statement appends its own figure rows, which only 0021's triggers know
    # to leave alone: on this older schema, every signup takes the full path.
    monkeypatch.setattr(newcomer, "applies", lambda ctx: False)
    knee, default = story(bare_app)
    with bare_app.app_context():
        before = kept()
        db.session.rollback()
    # As 0013 counted: ann under her last email, and as the default's downloader too.
    assert before[(default, "people", "downloaded")] == 2
    assert before.get((default, "complained", "guide")) is None

    migrate(bare_app, "0020")
    with bare_app.app_context():
        after = kept()
        assert after == recounted()
    assert after[(default, "people", "downloaded")] == after[(knee, "people", "downloaded")] == 1
    assert after[(0, "complained", "guide")] == after[(default, "complained", "guide")] == 1

    def unchanged(figures: dict) -> dict:
        changed = ("complained", "bounced", "downloaded")
        return {k: n for k, n in figures.items() if k[1] not in changed and k[2] not in changed}

    assert unchanged(after) == unchanged(before)

    migrate(bare_app, "0019", down=True)
    with bare_app.app_context():
        again = kept()
        assert again == recounted(figures_0013.backfill)
    assert again == before

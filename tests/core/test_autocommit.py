"""core/autocommit.py: each statement on its connection is committed by itself, so another
session sees it at once and nothing stays locked while the connection idles (both backends)."""

from __future__ import annotations

from sqlalchemy import select, update

from service.core.autocommit import autocommit_connection
from service.core.extensions import db
from service.core.models import Magnet
from service.sending.context import for_app


def test_a_statement_is_committed_by_itself_and_holds_nothing(app):
    with app.app_context():
        magnet_id = for_app(app).magnet_id  # the default magnet, loaded
        db.session.commit()
        with autocommit_connection() as alone:
            alone.execute(update(Magnet).where(Magnet.id == magnet_id).values(title="Alone"))
            # Another session, while the connection is still open and idle: sees it, and
            # can write (SQLite's one write lock is not held by the idle connection).
            with app.app_context():
                assert db.session.scalar(select(Magnet.title).where(Magnet.id == magnet_id)) == (
                    "Alone"
                )
                db.session.execute(
                    update(Magnet).where(Magnet.id == magnet_id).values(title="After")
                )
                db.session.commit()

"""core/autocommit.py: each statement on its connection is committed by itself, so another
session sees it at once and nothing stays locked while the connection idles (both backends)."""

from __future__ import annotations

import pytest
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


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_the_drivers_connection_commits_each_statement_and_goes_back_transactional(app):
    """autocommit_driver (PostgreSQL's hot paths): a statement is seen by another session
    while the block still holds the connection, and the connection goes back to the pool
    out of autocommit, as the sessions that check it out next expect."""
    from service.core.autocommit import autocommit_driver

    with app.app_context():
        magnet_id = for_app(app).magnet_id
        db.session.commit()
        with autocommit_driver() as driver:
            driver.execute("UPDATE magnet SET title = 'Driven' WHERE id = %s", (magnet_id,))
            with app.app_context():
                assert db.session.scalar(select(Magnet.title).where(Magnet.id == magnet_id)) == (
                    "Driven"
                )
                db.session.rollback()
        assert driver.autocommit is False

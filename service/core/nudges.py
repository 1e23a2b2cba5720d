"""Nudging the worker after a commit, from one place: a use case queues the ids of the
emails to send now on the session, and one hook sends them once the transaction commits.
A rollback drops them, so the worker is never asked for a row that does not exist."""

from __future__ import annotations

from collections.abc import Iterable

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from .broker import nudge
from .extensions import db

QUEUED = "leadmagnet.nudges"  # in Session.info: the ids waiting for the commit


def queue_nudge(email_ids: Iterable[int]) -> None:
    """Ask for these emails to be sent as soon as the current transaction commits."""
    ids = list(email_ids)
    if not ids:
        return
    session = db.session()
    if not session.in_transaction():
        session.begin()  # the ids belong to a transaction: its rollback or close drops them
    session.info.setdefault(QUEUED, []).extend(ids)


def nudge_committed(email_ids: list[int]) -> None:
    """Ask for these emails now: their rows were committed outside the session (a statement
    on an autocommit connection), so there is no commit to wait for."""
    if email_ids:
        nudge(current_app, email_ids)


def install() -> None:
    """Hook the session once per process (db.session serves every app the factory makes)."""
    for name, listener in (
        ("after_commit", _send_queued),
        ("after_soft_rollback", _drop_on_rollback),
        ("after_transaction_end", _drop_leftovers),
    ):
        if not event.contains(db.session, name, listener):
            event.listen(db.session, name, listener)


def _send_queued(session: Session) -> None:
    ids = session.info.pop(QUEUED, None)
    if ids:
        # The session commits inside an app context (Flask-SQLAlchemy binds through it), and
        # the producer is that app's. A broker that cannot be reached is logged and harmless:
        # the scheduler pass finds the committed rows.
        nudge(current_app, ids)


def _drop_on_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    session.info.pop(QUEUED, None)


def _drop_leftovers(session: Session, transaction: SessionTransaction) -> None:
    # A session closed without committing (the request ended, say) ends its transaction
    # with neither event above: what it queued was never written.
    if transaction.parent is None:
        session.info.pop(QUEUED, None)

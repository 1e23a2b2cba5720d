"""The after-commit nudge: queued ids go to the broker once the transaction commits, and
never after a rollback. Read back from the embedded broker's folder, message by message."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from flask import Flask

from service.core.broker import DELIVER
from service.core.extensions import db
from service.core.nudges import queue_nudge
from service.core.settings import settings_of


def nudged(app: Flask) -> list[int]:
    """The email ids of every deliver task in the broker's folder (the test env sets no
    REDIS_URL: the producer writes one file per message there)."""
    folder: Path = settings_of(app).broker_folder
    ids = []
    for path in sorted(folder.glob("*.msg")):
        message = json.loads(path.read_text())
        assert message["headers"]["task"] == DELIVER
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        ids.extend(args)
    return sorted(ids)


def test_a_commit_sends_what_was_queued_once(app: Flask):
    with app.app_context():
        queue_nudge([7, 8])
        assert nudged(app) == []  # nothing before the commit
        db.session.commit()
        assert nudged(app) == [7, 8]
        db.session.commit()  # the next commit has nothing queued
    assert nudged(app) == [7, 8]


def test_a_rollback_drops_what_was_queued(app: Flask):
    with app.app_context():
        queue_nudge([7])
        db.session.rollback()
        db.session.commit()
    with app.app_context():
        queue_nudge([8])
        db.session.close()  # the end of a request that never committed
        db.session.commit()
    assert nudged(app) == []


def test_the_signup_nudges_after_its_commit(app: Flask):
    client = app.test_client()
    answer = client.post("/api/subscribe", json={"email": "ann@example.com", "consent": True})
    assert answer.status_code == 202
    [email_id] = nudged(app)
    assert client.post("/api/subscribe", json={"email": "bad", "consent": True}).status_code == 422
    assert nudged(app) == [email_id]

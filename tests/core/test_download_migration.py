"""Migration 0018: downloads counted per person before it become the magnet's where the
person took one magnet; with several, which guide it was is not known, so none is claimed."""

from __future__ import annotations

from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import select, text

from service.core.extensions import db
from service.core.models import Enrolment, Subscriber
from tests.helpers import api_signup
from tests.magnets import KNEE, add_magnet, default_id


def test_downloads_before_the_upgrade_go_to_the_one_magnet_taken(app: Flask, client):
    knee, default = add_magnet(app), default_id(app)
    api_signup(client, "one@example.com", magnet=KNEE)
    api_signup(client, "two@example.com", magnet=KNEE)
    api_signup(client, "two@example.com")
    directory = app.extensions["migrate"].directory
    with app.app_context():
        downgrade(directory=directory, revision="0014")
        db.session.execute(text("UPDATE subscriber SET guide_downloads = 3"))
        db.session.commit()
        upgrade(directory=directory)
        found = db.session.execute(
            select(Subscriber.email, Enrolment.magnet_id, Enrolment.guide_downloads)
            .join(Subscriber, Subscriber.id == Enrolment.subscriber_id)
            .order_by(Subscriber.email, Enrolment.magnet_id)
        ).all()
    assert found == sorted(
        [
            ("one@example.com", knee, 3),
            ("two@example.com", knee, 0),
            ("two@example.com", default, 0),
        ]
    )

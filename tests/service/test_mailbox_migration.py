"""Migration 0008: subscribers who signed up before it get their mailbox key."""

from __future__ import annotations

from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import select, text

from service.extensions import db
from service.models import Subscriber


def test_existing_subscribers_get_their_mailbox_key(app: Flask):
    directory = app.extensions["migrate"].directory
    with app.app_context():
        downgrade(directory=directory, revision="0007")
        for n, address in enumerate(["V.ictim+1@gmail.com", "ann@example.com"]):
            db.session.execute(
                text(
                    "INSERT INTO subscriber (email, email_key, status, created_at, updated_at,"
                    " guide_downloads, token_key) VALUES (:email, :key, 'active', :at, :at, 0,"
                    " :key)"
                ),
                {"email": address, "key": address.casefold(), "at": f"2026-01-0{n + 1}"},
            )
        db.session.commit()
        upgrade(directory=directory)
        keys = db.session.execute(
            select(Subscriber.email, Subscriber.mailbox_key).order_by(Subscriber.id)
        ).all()
    assert keys == [
        ("V.ictim+1@gmail.com", "victim@gmail.com"),
        ("ann@example.com", "ann@example.com"),
    ]

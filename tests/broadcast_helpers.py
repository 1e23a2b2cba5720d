"""Broadcast test helpers: subscribers in bulk, a broadcast made and started, a pass run."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from sqlalchemy import insert, select

from service.content.broadcast_body import BroadcastText
from service.core.extensions import db
from service.core.models import EmailStatus, ScheduledEmail, Subscriber
from service.core.tokens import new_token_key
from service.sending import broadcasts
from service.sending.broadcast_audience import Audience
from service.sending.context import for_app
from service.sending.delivery import deliver
from service.sending.dispatch import run_pass

TEXT = BroadcastText(
    "News for {{ first_name }}",
    body_md="# Hello {{ first_name }}\n\nRead [our post](https://blog.example.org/post).\n",
)


def add_subscribers(app: Flask, count: int, prefix: str = "p") -> list[int]:
    with app.app_context():
        db.session.execute(
            insert(Subscriber),
            [
                {
                    "email": f"{prefix}{n}@example.com",
                    "email_key": f"{prefix}{n}@example.com",
                    "first_name": f"N{n}",
                    "status": "active",
                    "token_key": new_token_key(),
                }
                for n in range(count)
            ],
        )
        db.session.commit()
        return list(
            db.session.scalars(
                select(Subscriber.id)
                .where(Subscriber.email.like(f"{prefix}%@example.com"))
                .order_by(Subscriber.id)
            )
        )


def start_broadcast(app: Flask, audience: Audience | None = None, rate: str | None = None) -> int:
    with app.app_context():
        ctx = for_app(app)
        broadcast = broadcasts.create(ctx, TEXT, audience or Audience(), "test", rate_limit=rate)
        broadcasts.start(ctx, broadcast.id)
        return broadcast.id


def hand_out(app: Flask) -> list[int]:
    """One scheduler pass whose hand-off only collects the ids (a worker takes them later)."""
    handed: list[int] = []
    with app.app_context():
        run_pass(for_app(app), handed.extend)
    return handed


def deliver_ids(app: Flask, ids: list[int], between: Callable[[int], None] | None = None):
    outcomes = []
    with app.app_context():
        ctx = for_app(app)
        for n, email_id in enumerate(ids):
            if between is not None:
                between(n)
            outcomes.append(deliver(ctx, email_id))
    return outcomes


def rows(app: Flask, broadcast_id: int) -> list[ScheduledEmail]:
    with app.app_context():
        found = list(
            db.session.scalars(
                select(ScheduledEmail)
                .where(ScheduledEmail.broadcast_id == broadcast_id)
                .order_by(ScheduledEmail.id)
            )
        )
        db.session.expunge_all()
        return found


def sent_count(app: Flask, broadcast_id: int) -> int:
    return sum(r.status == EmailStatus.SENT for r in rows(app, broadcast_id))

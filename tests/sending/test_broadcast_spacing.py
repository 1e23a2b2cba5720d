"""A broadcast row goes through the real batch path (dispatch.deliver_batch) and still waits
EMAIL_MIN_GAP after another magnet's email to the same person."""

from __future__ import annotations

from datetime import timedelta

import time_machine
from sqlalchemy import select, update

from service.core.extensions import db
from service.core.models import EmailStatus, ScheduledEmail, Subscriber, SubscriberStatus
from service.sending import broadcasts
from service.sending.broadcast_audience import Audience
from service.sending.context import for_app
from service.sending.dispatch import deliver_batch
from tests.broadcast_helpers import TEXT
from tests.magnets import add_magnet
from tests.sending.test_spacing import NOW, ann, sent_at  # noqa: F401 (ann: a fixture)


def test_a_broadcast_row_waits_the_gap_after_another_magnets_email(app, ann, outbox):  # noqa: F811
    knee = add_magnet(app)
    with app.app_context(), time_machine.travel(NOW, tick=False):
        db.session.execute(update(Subscriber).values(status=SubscriberStatus.ACTIVE))
        sent_at(ann, knee, NOW - timedelta(minutes=10))
        db.session.commit()
        ctx = for_app(app)
        broadcast = broadcasts.create(ctx, TEXT, Audience(), "test")
        assert broadcasts.start(ctx, broadcast.id) == 1
        row_id = db.session.scalars(
            select(ScheduledEmail.id).where(ScheduledEmail.broadcast_id == broadcast.id)
        ).one()
        before = len(list(outbox.glob("*.eml")))
        assert deliver_batch(ctx, [row_id], lambda: False) == 0
        db.session.expire_all()
        held = db.session.get_one(ScheduledEmail, row_id)
        assert held.status == EmailStatus.PENDING and held.due_at == NOW + timedelta(minutes=50)
        assert len(list(outbox.glob("*.eml"))) == before
    with app.app_context(), time_machine.travel(NOW + timedelta(minutes=50), tick=False):
        assert deliver_batch(for_app(app), [row_id], lambda: False) == 1
        assert db.session.get_one(ScheduledEmail, row_id).status == EmailStatus.SENT
        assert len(list(outbox.glob("*.eml"))) == before + 1

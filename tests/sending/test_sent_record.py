"""The record of a sent drip email schedules its next step: in the record statement itself
on PostgreSQL (worked out from the drip rows the batch's check read), through the session
when that step has a row to bring back, and harmlessly when the step appeared since."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select, update

from service.core.extensions import db
from service.core.models import EmailStatus, ScheduledEmail
from service.sending.context import for_app
from service.sending.delivery import Claimed, deliver
from service.sending.schedule import schedule_step
from tests.helpers import api_signup

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def rows(app) -> dict[str, tuple[str, datetime]]:
    with app.app_context():
        found = db.session.execute(
            select(ScheduledEmail.step_id, ScheduledEmail.status, ScheduledEmail.due_at)
        ).all()
        db.session.rollback()
    return {step: (status, due) for step, status, due in found}


def signup(app) -> int:
    with time_machine.travel(T0, tick=False):
        assert api_signup(app.test_client(), "next@example.com").status_code == 202
    with app.app_context():
        return db.session.scalars(select(ScheduledEmail.id)).one()


def test_a_sent_guide_schedules_its_next_step_two_days_on(app):
    guide = signup(app)
    with time_machine.travel(T0, tick=False), app.app_context():
        assert deliver(for_app(app), guide) == "sent"
    found = rows(app)
    assert found["guide"][0] == EmailStatus.SENT
    assert found["knees-over-toes"] == (EmailStatus.PENDING, T0 + timedelta(days=2))
    assert len(found) == 2


def test_a_cancelled_next_step_comes_back_due_from_this_send(app):
    guide = signup(app)
    with time_machine.travel(T0 - timedelta(days=9), tick=False), app.app_context():
        ctx = for_app(app)
        email = db.session.get_one(ScheduledEmail, guide)
        row = schedule_step(ctx, email.subscriber, ctx.content.steps[1], T0 - timedelta(days=9))
        row.status = EmailStatus.CANCELLED
        db.session.commit()
    with time_machine.travel(T0, tick=False), app.app_context():
        assert deliver(for_app(app), guide) == "sent"
    assert rows(app)["knees-over-toes"] == (EmailStatus.PENDING, T0 + timedelta(days=2))


@pytest.mark.postgres
def test_a_next_step_written_after_the_check_is_kept_not_doubled(pg_app):
    """Between the batch's check and the record another writer adds the next step (a
    resubscription, say): the record still lands, and the step stays one row."""
    app = pg_app
    guide = signup(app)
    with time_machine.travel(T0, tick=False), app.app_context():
        ctx = for_app(app)
        held = T0 + timedelta(seconds=ctx.settings.send_lease)
        db.session.execute(
            update(ScheduledEmail)
            .where(ScheduledEmail.id == guide)
            .values(status=EmailStatus.SENDING, lease_until=held)
        )
        db.session.commit()
        batch = Claimed.check(ctx, [guide], held)
        email = db.session.get_one(ScheduledEmail, guide)
        schedule_step(ctx, email.subscriber, ctx.content.steps[1], T0 - timedelta(days=1))
        db.session.commit()
        assert batch.send(guide) == "sent"
    found = rows(app)
    assert found["guide"][0] == EmailStatus.SENT
    assert found["knees-over-toes"] == (EmailStatus.PENDING, T0 + timedelta(days=1))
    assert len(found) == 2

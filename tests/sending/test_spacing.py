"""EMAIL_MIN_GAP at send time: another magnet's or a broadcast's email waits the gap after
the last one; first emails are never held; one magnet's own sequence keeps its delays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import delete, select

from service.core.extensions import db
from service.core.models import EmailStatus, Outcome, Purpose, ScheduledEmail, Subscriber
from service.sending.context import for_app
from service.sending.delivery import claim, deliver
from service.sending.message import new_message_id
from service.sending.spacing import held_until
from tests.helpers import api_signup
from tests.magnets import KNEE, add_magnet, default_id

NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
GAP = timedelta(hours=1)


@pytest.fixture
def ann(app, client) -> int:
    """A subscriber with nothing scheduled: each test writes the rows it is about."""
    with time_machine.travel(NOW - timedelta(days=3), tick=False):
        assert api_signup(client, "ann@example.com").status_code == 202
    with app.app_context():
        db.session.execute(delete(ScheduledEmail))
        db.session.commit()
        return db.session.scalars(select(Subscriber.id)).one()


def row(subscriber_id: int, magnet_id: int | None, step: str, purpose: str, **values):
    email = ScheduledEmail(
        subscriber_id=subscriber_id,
        magnet_id=magnet_id,
        step_id=step,
        purpose=purpose,
        status=values.pop("status", EmailStatus.PENDING),
        anchor_at=NOW - timedelta(days=2),
        due_at=values.pop("due_at", NOW),
        attempts=values.pop("attempts", 0),
        message_id=new_message_id("t@example.org"),
        **values,
    )
    db.session.add(email)
    db.session.flush()
    return email


def sent_at(subscriber_id: int, magnet_id: int | None, when: datetime, step="s-sent"):
    return row(subscriber_id, magnet_id, step, Purpose.DRIP, status=EmailStatus.SENT, sent_at=when)


def test_another_magnets_follow_up_waits_until_the_gap_has_passed(app, ann):
    knee, default = add_magnet(app), default_id(app)
    with app.app_context(), time_machine.travel(NOW, tick=False):
        ctx = for_app(app)
        sent_at(ann, default, NOW - timedelta(minutes=20))
        follow_up = row(ann, knee, "knees-over-toes", Purpose.DRIP)
        assert held_until(ctx, follow_up) == NOW - timedelta(minutes=20) + GAP
        follow_up.status = EmailStatus.CANCELLED
        own = row(ann, default, "ankle-mobility", Purpose.DRIP)
        assert held_until(ctx, own) is None, "a sequence's own delays are its own"


def test_of_two_emails_due_together_the_one_waiting_longest_goes_first(app, ann):
    knee, default = add_magnet(app), default_id(app)
    with app.app_context(), time_machine.travel(NOW, tick=False):
        ctx = for_app(app)
        # The knee follow-up was held to now; the default's next step falls due now too.
        held = row(ann, knee, "knees-over-toes", Purpose.DRIP)
        held.anchor_at = NOW - timedelta(days=3)
        due = row(ann, default, "ankle-mobility", Purpose.DRIP)
        assert held_until(ctx, due) == NOW + GAP, "whichever a worker takes first"
        assert held_until(ctx, held) is None
        held.due_at = NOW + timedelta(minutes=1)  # not due yet: it does not hold others
        assert held_until(ctx, due) is None


def test_first_emails_are_never_held_but_count_for_the_others(app, ann):
    knee, default = add_magnet(app), default_id(app)
    with app.app_context(), time_machine.travel(NOW, tick=False):
        ctx = for_app(app)
        sent_at(ann, default, NOW - timedelta(minutes=5), step="knees-over-toes")
        first_step = ctx.for_magnet(knee).content.first.id
        for purpose, step in [
            (Purpose.RESEND, first_step),
            (Purpose.CONFIRM, "confirm"),
            (Purpose.TEST, "guide"),
            (Purpose.DRIP, first_step),
        ]:
            email = row(ann, knee, step, purpose)
            assert held_until(ctx, email) is None, purpose
        email.status, email.sent_at = EmailStatus.SENT, NOW  # the guide left
        later = row(ann, default, "ankle-mobility", Purpose.DRIP)
        assert held_until(ctx, later) == NOW + GAP, "a guide that just left counts"


def test_a_broadcast_waits_after_any_magnet_and_holds_them_back_in_turn(app, ann):
    default = default_id(app)
    with app.app_context(), time_machine.travel(NOW, tick=False):
        ctx = for_app(app)
        sent_at(ann, default, NOW - timedelta(minutes=30))
        broadcast = row(ann, None, "broadcast-1", "broadcast")
        assert held_until(ctx, broadcast) == NOW + timedelta(minutes=30)
        broadcast.status, broadcast.sent_at = EmailStatus.SENT, NOW
        follow_up = row(ann, default, "ankle-mobility", Purpose.DRIP)
        assert held_until(ctx, follow_up) == NOW + GAP
        another = row(ann, None, "broadcast-2", "broadcast")
        assert held_until(ctx, another) == NOW + GAP, "two broadcasts are spaced too"


def test_tests_and_old_emails_do_not_hold_anything(app, ann):
    knee, default = add_magnet(app), default_id(app)
    with app.app_context(), time_machine.travel(NOW, tick=False):
        ctx = for_app(app)
        sent_at(ann, default, NOW - GAP - timedelta(seconds=1))
        row(ann, None, "guide", Purpose.TEST, status=EmailStatus.SENT, sent_at=NOW)
        assert held_until(ctx, row(ann, knee, "knees-over-toes", Purpose.DRIP)) is None


def test_an_email_of_another_magnet_in_flight_holds_this_one(app, ann):
    knee, default = add_magnet(app), default_id(app)
    with app.app_context(), time_machine.travel(NOW, tick=False):
        ctx = for_app(app)
        row(
            ann,
            default,
            "ankle-mobility",
            Purpose.DRIP,
            status=EmailStatus.SENDING,
            lease_until=NOW + timedelta(minutes=5),
        )
        assert held_until(ctx, row(ann, knee, "knees-over-toes", Purpose.DRIP)) == NOW + GAP


def test_a_zero_gap_turns_the_rule_off(env, tmp_path):
    from tests.conftest import make_app

    app = make_app({**env, "EMAIL_MIN_GAP": "0"})
    knee, default = add_magnet(app), default_id(app)
    with app.app_context(), time_machine.travel(NOW, tick=False):
        db.session.add(Subscriber(email="bo@example.com", email_key="bo@example.com"))
        db.session.flush()
        bo = db.session.scalars(select(Subscriber.id)).one()
        sent_at(bo, default, NOW)
        assert held_until(for_app(app), row(bo, knee, "knees-over-toes", Purpose.DRIP)) is None


def test_delivery_gives_a_held_email_back_without_counting_an_attempt(app, ann, outbox):
    knee, default = add_magnet(app), default_id(app)
    with app.app_context(), time_machine.travel(NOW, tick=False):
        sent_at(ann, default, NOW - timedelta(minutes=10))
        follow_up = row(ann, knee, "knees-over-toes", Purpose.DRIP, attempts=2)
        db.session.commit()
        email_id = follow_up.id
        before = len(list(outbox.glob("*.eml")))
        assert deliver(for_app(app), email_id) == Outcome.SPACED
        db.session.expire_all()
        held = db.session.get_one(ScheduledEmail, email_id)
        assert (held.status, held.attempts, held.lease_until) == (EmailStatus.PENDING, 2, None)
        assert held.due_at == NOW + timedelta(minutes=50)
        assert len(list(outbox.glob("*.eml"))) == before
        assert not claim(email_id, NOW + timedelta(minutes=49), 300), "not due before then"
        db.session.rollback()
    with app.app_context(), time_machine.travel(NOW + timedelta(minutes=50), tick=False):
        assert deliver(for_app(app), email_id) == Outcome.SENT
        assert db.session.get_one(ScheduledEmail, email_id).attempts == 3
    assert KNEE  # the magnet the follow-up belongs to

"""Two claimers of the same rows, interleaved by hand (no timing, no luck): a row claimed by
one is never claimed by the other, whichever statement reaches the row first, and a pass's
hand-off skips rows another transaction holds. Breaking the claim's status or lease
predicate, or SKIP LOCKED, turns these red; tests/e2e/test_race.py alone could not tell."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import delete, select, text, update

from service.core.extensions import db
from service.core.models import EmailStatus, Purpose, ScheduledEmail, Subscriber
from service.sending.batch_claims import claim_batch
from service.sending.context import for_app
from service.sending.dispatch import claim_due
from service.sending.spacing import held_until_each, hold
from tests.helpers import api_signup
from tests.magnets import add_magnet, default_id
from tests.sending.test_spacing import GAP, NOW, row

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LEASE = 60


def due_rows(app, count: int) -> list[int]:
    client = app.test_client()
    with time_machine.travel(T0 - timedelta(minutes=1), tick=False):
        for n in range(count):
            assert api_signup(client, f"c{n}@example.com").status_code == 202
    with app.app_context():
        return list(db.session.scalars(select(ScheduledEmail.id).order_by(ScheduledEmail.id)))


def test_a_row_claimed_by_one_claimer_is_not_claimed_by_the_next(app):
    """Claims one after the other (both backends): the second finds every row taken, and
    again just before the first's lease runs out; after it, the row is claimable again."""
    ids = due_rows(app, 4)
    with app.app_context():
        first, held = claim_batch(ids[:3], T0, LEASE)
        assert first == ids[:3]
        with app.app_context():  # another worker: a session and a connection of its own
            second, _ = claim_batch(ids, T0 + timedelta(seconds=1), LEASE)
            assert second == [ids[3]], "a row claimed by one worker was claimed by another"
            assert claim_batch(ids, held - timedelta(microseconds=1), LEASE)[0] == []
            after, _ = claim_batch(ids, held + timedelta(milliseconds=500), LEASE)
        # The first's rows are claimable once its lease ran out; the second's, a second
        # younger, not yet.
        assert after == ids[:3]


@pytest.mark.postgres
def test_a_claim_waiting_on_a_row_another_claimer_takes_gets_nothing(pg_app):
    """B's claim reaches rows A's claim holds locked; A commits its claim; B then re-reads
    them and must find them taken (PostgreSQL re-checks the UPDATE's predicate on the new
    row version)."""
    app = pg_app
    ids = due_rows(app, 3)
    got: list[list[int]] = []
    with app.app_context():
        # A, mid-claim: its UPDATE has locked the rows and not yet committed.
        db.session.execute(
            update(ScheduledEmail)
            .where(ScheduledEmail.id.in_(ids))
            .values(status=EmailStatus.SENDING, lease_until=T0 + timedelta(seconds=LEASE))
        )

        def other_worker() -> None:
            with app.app_context():
                got.append(claim_batch(ids, T0, LEASE)[0])

        b = threading.Thread(target=other_worker)
        b.start()
        wait_until_blocked_or_done(b)
        db.session.commit()  # A's claim lands while B waits on its locks
        b.join(timeout=30)
    assert not b.is_alive()
    assert got == [[]], "two claimers got the same rows"


def wait_until_blocked_or_done(other: threading.Thread | None = None) -> None:
    """Until another session waits on a row lock (or `other` ended without waiting):
    polled state, not a guessed delay."""
    probe = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND datname = current_database() AND pid <> pg_backend_pid()"
    )
    with db.engine.connect() as conn:
        for _ in range(100_000):
            if conn.execute(probe).scalar() or (other is not None and not other.is_alive()):
                return
            conn.rollback()
    raise AssertionError("the other session never reached the locked rows")


@pytest.mark.postgres
def test_a_pass_skips_rows_another_pass_holds_and_hands_each_row_once(pg_app):
    """Two scheduler passes at once: while one holds rows locked, the other hands out only
    the rest, at once (SKIP LOCKED), never the held ones."""
    app = pg_app
    ids = due_rows(app, 4)
    with app.app_context():
        db.session.execute(
            select(ScheduledEmail.id).where(ScheduledEmail.id.in_(ids[:2])).with_for_update()
        ).all()  # the other pass, mid-hand-off
        with app.app_context(), time_machine.travel(T0, tick=False):
            db.session.execute(text("SET lock_timeout = '5s'"))  # a wait fails, never hangs
            try:
                handed = claim_due(for_app(app), T0)
            finally:
                db.session.rollback()
                db.session.execute(text("RESET lock_timeout"))
                db.session.commit()
        assert handed == ids[2:], "a pass handed out rows another pass holds"
        db.session.rollback()


@pytest.mark.postgres
def test_two_workers_spacing_one_persons_emails_decide_one_after_the_other(pg_app):
    """EMAIL_MIN_GAP: A and B each claimed one of Ann's emails (two magnets'). A decides
    first under Ann's row lock: B's email is in flight, so A's waits. B's decision waits for
    A's, then sees A's email given back, and B's goes: one of the two goes, never none (both
    holding each other back) and never both."""
    app = pg_app
    knee, default = add_magnet(app), default_id(app)
    with time_machine.travel(NOW - timedelta(days=3), tick=False):
        assert api_signup(app.test_client(), "ann@example.com").status_code == 202
    lease = NOW + timedelta(minutes=5)
    with app.app_context():
        db.session.execute(delete(ScheduledEmail))
        ann = db.session.scalars(select(Subscriber.id)).one()
        claimed = {"status": EmailStatus.SENDING, "lease_until": lease}
        a = row(ann, default, "ankle-mobility", Purpose.DRIP, **claimed).id
        b = row(ann, knee, "knees-over-toes", Purpose.DRIP, **claimed).id
        db.session.commit()
    decided: list[dict] = []
    with time_machine.travel(NOW, tick=False), app.app_context():
        mine = db.session.get_one(ScheduledEmail, a)
        assert held_until_each(for_app(app), [mine]) == {a: NOW + GAP}
        hold(mine, NOW + GAP)
        db.session.flush()  # A's decision, not yet committed: Ann's row stays locked

        def worker_b() -> None:
            with app.app_context():
                theirs = db.session.get_one(ScheduledEmail, b)
                decided.append(held_until_each(for_app(app), [theirs]))
                db.session.commit()

        other = threading.Thread(target=worker_b)
        other.start()
        wait_until_blocked_or_done(other)
        db.session.commit()
        other.join(timeout=30)
    assert decided == [{}], "B decided without waiting for A: both emails held back"

"""Claims and hand-offs: a claim is durable before the send, a hand-off is a lease of
SEND_LEASE that a live worker renews and a dead one lets run out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import event, select

from service.core.extensions import db
from service.core.models import ScheduledEmail
from service.sending.context import for_app
from service.sending.delivery import claim, deliver
from service.sending.dispatch import claim_due, deliver_batch
from tests.conftest import make_app
from tests.helpers import api_signup

LEASE = 10  # SEND_LEASE, seconds
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def signups(app, count: int) -> list[int]:
    client = app.test_client()
    with time_machine.travel(T0 - timedelta(minutes=1), tick=False):
        for n in range(count):
            assert api_signup(client, f"h{n}@example.com").status_code == 202
    with app.app_context():
        return list(db.session.scalars(select(ScheduledEmail.id).order_by(ScheduledEmail.id)))


@pytest.fixture
def leased_app(env):
    return make_app({**env, "SEND_LEASE": str(LEASE)})


def test_rows_handed_off_but_never_claimed_are_handed_again_once_the_send_lease_runs_out(
    leased_app,
):
    ids = signups(leased_app, 3)
    with leased_app.app_context():
        with time_machine.travel(T0, tick=False):
            assert claim_due(for_app(leased_app), T0) == ids  # handed to a worker that then dies
        before, after = T0 + timedelta(seconds=LEASE - 1), T0 + timedelta(seconds=LEASE + 1)
        with time_machine.travel(before, tick=False):
            assert claim_due(for_app(leased_app), before) == [], (
                "not handed twice while the hand-off holds"
            )
        with time_machine.travel(after, tick=False):
            assert claim_due(for_app(leased_app), after) == ids


def test_a_slow_live_worker_keeps_its_batch_while_passes_go_by(leased_app, outbox):
    """Each send takes 40% of the lease and a pass runs between sends: the batch outlasts its
    hand-off twice over, yet no pass hands any of its rows to another worker."""
    ids = signups(leased_app, 6)
    taken: list[int] = []
    with leased_app.app_context(), time_machine.travel(T0, tick=False) as clock:
        assert claim_due(for_app(leased_app), T0) == ids

        def stopping() -> bool:
            clock.shift(timedelta(seconds=LEASE * 0.4))
            taken.extend(
                claim_due(for_app(leased_app), datetime.now(UTC))
            )  # the beat's pass, racing
            return False

        assert deliver_batch(for_app(leased_app), ids, stopping) == len(ids)
    assert taken == [], f"a pass handed {len(taken)} rows of a live batch again"
    assert len(list(outbox.glob("*.eml"))) == len(ids)


@pytest.mark.postgres
def test_a_claim_is_durable_before_the_send(pg_app):
    """The send follows the claim at once: a claim acknowledged but lost in a database crash
    would let another worker send the same email, so its commit waits for the disk."""
    app = pg_app
    [email_id] = signups(app, 1)
    seen: list[str] = []
    with app.app_context():

        def at_commit(conn) -> None:
            seen.append(conn.exec_driver_sql("SHOW synchronous_commit").scalar())

        event.listen(db.engine, "commit", at_commit)
        try:
            assert claim(email_id, datetime.now(UTC), LEASE)
        finally:
            event.remove(db.engine, "commit", at_commit)
    assert seen == ["on"]


@pytest.mark.postgres
def test_only_the_sent_record_skips_the_wait_for_the_disk(pg_app, monkeypatch):
    """The record of an accepted send commits without waiting for the disk (README,
    delivery guarantees); the signup with its consent, the claim and the checks do wait.
    The record is one statement on an autocommit connection, its own transaction: the
    setting it makes lasts until that transaction's commit, and not one statement longer
    (read once its answer is in: the statement is sent, then answered after the next render)."""
    from service.sending import sent_record

    app = pg_app
    seen: list[str] = []
    records: list[tuple[bool, str, str]] = []
    answer = sent_record.answer

    def watched(sent):
        got = answer(sent)
        raw = sent.driver
        after = raw.execute("SHOW synchronous_commit").fetchone()[0]
        records.append((raw.autocommit, sent.sql.decode(), after))
        return got

    def at_commit(conn) -> None:
        seen.append(conn.exec_driver_sql("SHOW synchronous_commit").scalar())

    monkeypatch.setattr(sent_record, "answer", watched)
    with app.app_context():
        event.listen(db.engine, "commit", at_commit)
        try:
            [email_id] = signups(app, 1)
            signed_up = len(seen)
            assert deliver(for_app(app), email_id) == "sent"
        finally:
            event.remove(db.engine, "commit", at_commit)
    assert signed_up >= 1 and set(seen[:signed_up]) == {"on"}
    assert seen[signed_up:] and set(seen[signed_up:]) == {"on"}, "claim and checks"
    [(autocommit, statement, after)] = records
    assert autocommit, "the sent-record is its own transaction"
    assert "set_config('synchronous_commit', 'off', true)" in statement
    assert after == "on", "the next statement on that connection waits for the disk again"

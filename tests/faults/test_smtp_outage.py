"""The SMTP server down for a minute (really down: connections refused), then a new one on
the same port: every email delivered, each subscriber's in sequence order, none early.

The retry backoff (60 s, doubling) is crossed by time travel, not waited out."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from service.core.extensions import db
from service.core.models import DeliveryAttempt, EmailStatus, ScheduledEmail, Subscriber
from service.sending.context import for_app
from service.sending.delivery import BACKOFF_CAP, RETRY_FOR
from tests.conftest import free_port, make_app
from tests.helpers import api_signup, dispatch_inline
from tests.smtp import RecordingSMTPServer

pytestmark = pytest.mark.slow
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
OUTAGE = timedelta(minutes=1)


def next_due(app) -> datetime | None:
    with app.app_context():
        due = db.session.scalar(
            select(func.min(ScheduledEmail.due_at)).where(
                ScheduledEmail.status == EmailStatus.PENDING
            )
        )
    if due is not None and due.tzinfo is None:  # SQLite keeps no zone: the column is UTC
        due = due.replace(tzinfo=UTC)
    return due


def test_a_minute_without_smtp_delays_but_loses_and_reorders_nothing(env):
    port = free_port()
    servers = [RecordingSMTPServer(port)]
    servers[0].start()
    running = servers[0]
    app = make_app({**env, "EMAIL_URL": servers[0].url})
    client = app.test_client()
    try:
        with time_machine.travel(START, tick=False) as traveller:
            # Subscribers a, b and c signed up two days apart: when the outage starts, a is
            # due its fourth email, b its third, c its second.
            for day, name in enumerate("abc"):
                traveller.move_to(START + timedelta(days=2 * day))
                dispatch_inline(app)
                assert api_signup(client, f"{name}@example.com").status_code == 202
                assert dispatch_inline(app) == ["sent"]
            traveller.move_to(START + timedelta(days=6))
            running.stop()
            running = None
            down_at = START + timedelta(days=6)

            # d signs up as it starts and e half a minute in: signups do not need SMTP.
            assert api_signup(client, "d@example.com").status_code == 202
            in_outage = Counter(dispatch_inline(app))
            traveller.move_to(down_at + OUTAGE / 2)
            assert api_signup(client, "e@example.com").status_code == 202
            in_outage += Counter(dispatch_inline(app))
            traveller.move_to(down_at + OUTAGE)
            in_outage += Counter(dispatch_inline(app))

            servers.append(RecordingSMTPServer(port))  # a new server on the same port
            servers[1].start()
            running = servers[1]
            after: Counter = Counter()
            for _ in range(200):  # travel to each next due email until the sequences end
                due = next_due(app)
                if due is None:
                    break
                traveller.move_to(max(due, datetime.now(UTC)) + timedelta(seconds=1))
                done = dispatch_inline(app)
                assert done, f"an email due at {due} (a retry's backoff) was not handed out"
                after += Counter(done)
            assert next_due(app) is None, "every sequence ran to its end"
    finally:
        if running is not None:
            running.stop()

    received = servers[0].received + servers[1].received
    with app.app_context():
        steps = [step.id for step in for_app(app).content.steps]
        delays = {step.id: step.delay for step in for_app(app).content.steps}
        rows = {
            email.message_id: (email, address)
            for email, address in db.session.execute(
                select(ScheduledEmail, Subscriber.email).join(
                    Subscriber, Subscriber.id == ScheduledEmail.subscriber_id
                )
            )
        }
        refused = db.session.scalars(
            select(DeliveryAttempt.smtp_reply).where(DeliveryAttempt.outcome == "deferred")
        ).all()
        statuses = Counter(email.status for email, _ in rows.values())
    got: dict[str, list[str]] = defaultdict(list)
    sent_at: dict[str, list[datetime]] = defaultdict(list)
    for message in received:
        email, address = rows[message.message["Message-ID"]]
        assert message.recipients == [address]
        got[address].append(email.step_id)
        sent_at[address].append(email.sent_at)
    print(
        f"\nsmtp outage ({env['DATABASE_URL'].split(':')[0].split('+')[0]}): "
        f"{OUTAGE.seconds}s refused, {sum(in_outage.values())} sends tried in it "
        f"({dict(in_outage)}); back: {len(servers[1].received)} delivered "
        f"({dict(after)}), {len(servers[0].received)} before the outage; "
        f"{len(received)} emails to 5 subscribers ({len(steps)} steps each expected)"
    )
    assert set(in_outage) == {"deferred"} and in_outage["deferred"] >= 5
    assert refused and all("refused" in reply.lower() for reply in refused), refused
    assert set(after) == {"sent"}, "after the outage every send went through at once"
    assert statuses == {"sent": 5 * len(steps)}
    assert len({m.message["Message-ID"] for m in received}) == len(received), "none twice"
    for address in (f"{name}@example.com" for name in "abcde"):
        assert got[address] == steps, (address, got[address])
        times = sent_at[address]
        for before, at, step in zip(times[:-1], times[1:], steps[1:], strict=True):
            assert at >= before + delays[step], f"{address}: {step} early"


def test_a_follow_up_is_retried_for_two_days_from_its_first_try_then_failed(env):
    """The retry window runs from the first try, not from when the row was written (a
    follow-up's row is written days before it is due)."""
    server = RecordingSMTPServer(free_port())
    server.start()
    app = make_app({**env, "EMAIL_URL": server.url})
    with time_machine.travel(START, tick=False) as traveller:
        assert api_signup(app.test_client(), "long@example.com").status_code == 202
        assert dispatch_inline(app) == ["sent"]
        server.stop()  # and it never comes back
        outcomes: list[str] = []
        for _ in range(100):
            due = next_due(app)
            if due is None:
                break
            traveller.move_to(max(due, datetime.now(UTC)) + timedelta(seconds=1))
            done = dispatch_inline(app)
            assert done, f"an email due at {due} (a retry's backoff) was not handed out"
            outcomes += done
    with app.app_context():
        email = db.session.scalars(
            select(ScheduledEmail).where(ScheduledEmail.step_id != "guide")
        ).one()
        tries = db.session.scalars(
            select(DeliveryAttempt.created_at)
            .where(DeliveryAttempt.email_id == email.id)
            .order_by(DeliveryAttempt.id)
        ).all()
    assert outcomes[-1] == "failed" and set(outcomes[:-1]) == {"deferred"}, outcomes
    assert email.status == "failed" and len(tries) == len(outcomes) > 2
    assert RETRY_FOR <= tries[-1] - tries[0] < RETRY_FOR + timedelta(seconds=BACKOFF_CAP * 1.2)

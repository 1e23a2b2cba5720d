"""Delivering the guide: MIME shape, headers, SMTP replies, claims and leases."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import time_machine
from sqlalchemy import select

from service.core.clock import utcnow
from service.core.extensions import db
from service.core.models import DeliveryAttempt, EmailStatus, ScheduledEmail, Subscriber
from service.core.settings import DEFAULT_SEQUENCE_FILE
from service.sending.context import for_app
from service.sending.delivery import claim, deliver
from tests.conftest import make_app
from tests.helpers import api_signup, dispatch_inline, parts

HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe")


def smtp_app(env, smtpd):
    return make_app({**env, "EMAIL_URL": smtpd.url})


def test_guide_arrives_over_smtp_with_every_header(env, smtpd):
    app = smtp_app(env, smtpd)
    client = app.test_client()
    assert api_signup(client, "zoe@example.com", first_name="Zoë").status_code == 202
    assert dispatch_inline(app) == ["sent"]

    [received] = smtpd.received
    msg = received.message
    assert received.recipients == ["zoe@example.com"]
    assert msg.get_content_type() == "multipart/alternative"
    for name in HEADERS:
        assert msg[name], f"{name} header missing"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["From"] == "Inside Out Strength <coach@insideoutstrength.example>"
    url = msg["List-Unsubscribe"].strip("<>")
    assert url.startswith("https://news.example.org/unsubscribe/")
    text, html = parts(msg)
    for body in (text, html):
        assert url in body
        assert "Springfield" in body  # the sender's postal address
        assert "https://news.example.org/guide/" in body
    assert "Zoë" in text


def test_the_smtp_reply_and_message_id_are_logged(env, smtpd):
    app = smtp_app(env, smtpd)
    api_signup(app.test_client(), "log@example.com")
    dispatch_inline(app)
    with app.app_context():
        attempt = db.session.scalars(select(DeliveryAttempt)).one()
        email = db.session.get(ScheduledEmail, attempt.email_id)
        assert attempt.outcome == "sent" and attempt.smtp_code == 250
        assert "queued as 1" in attempt.smtp_reply
        assert attempt.message_id == email.message_id == smtpd.received[0].message["Message-ID"]


def test_a_claimed_row_cannot_be_claimed_again(app, client):
    api_signup(client, "once@example.com")
    with app.app_context():
        email_id = db.session.scalars(select(ScheduledEmail.id)).one()
        now = utcnow()
        assert claim(email_id, now, lease=60)
        assert not claim(email_id, now, lease=60)


def test_an_expired_lease_resends_with_the_same_message_id(env, smtpd):
    """A worker that died mid-send leaves a claim; after the lease the email goes again."""
    app = smtp_app(env, smtpd)
    api_signup(app.test_client(), "lease@example.com")
    with app.app_context():
        email_id = db.session.scalars(select(ScheduledEmail.id)).one()
        assert claim(email_id, utcnow(), lease=300)  # the worker that then died
    assert dispatch_inline(app) == []  # its lease still holds
    with time_machine.travel(utcnow() + timedelta(seconds=301), tick=False):
        assert dispatch_inline(app) == ["sent"]
    [received] = smtpd.received
    with app.app_context():
        assert received.message["Message-ID"] == db.session.get(ScheduledEmail, email_id).message_id


def test_transient_replies_retry_later_and_deliver_once(env, smtpd):
    app = smtp_app(env, smtpd)
    smtpd.handler.script = ["451 4.3.0 try again later", "451 4.3.0 try again later"]
    api_signup(app.test_client(), "retry@example.com")
    assert dispatch_inline(app) == ["deferred"]
    assert dispatch_inline(app) == []  # backing off
    later = utcnow()
    for _ in range(2):
        later += timedelta(hours=1)
        with time_machine.travel(later, tick=False):
            dispatch_inline(app)
    assert len(smtpd.received) == 1
    with app.app_context():
        outcomes = list(
            db.session.scalars(select(DeliveryAttempt.outcome).order_by(DeliveryAttempt.id))
        )
        assert outcomes == ["deferred", "deferred", "sent"]


def test_a_recipient_refused_with_5xx_bounces_the_subscriber(env, smtpd):
    app = smtp_app(env, smtpd)
    smtpd.handler.rcpt_reply = "550 5.1.1 no such user"
    api_signup(app.test_client(), "ghost@example.com")
    assert dispatch_inline(app) == ["bounced"]
    with app.app_context():
        assert db.session.scalars(select(Subscriber.status)).one() == "bounced"


def test_a_5xx_about_the_message_fails_it_without_touching_the_subscriber(env, smtpd):
    app = smtp_app(env, smtpd)
    smtpd.handler.script = ["554 5.7.1 message content rejected"]
    api_signup(app.test_client(), "content@example.com")
    assert dispatch_inline(app) == ["failed"]
    with app.app_context():
        assert db.session.scalars(select(Subscriber.status)).one() == "active"
        assert db.session.scalars(select(ScheduledEmail.status)).one() == EmailStatus.FAILED


def test_an_unsubscribe_after_the_claim_sends_nothing(app, client, outbox, monkeypatch):
    api_signup(client, "late@example.com")
    from service.sending import delivery

    real_compose = delivery.compose

    def compose_then_unsubscribe(*args, **kwargs):
        result = real_compose(*args, **kwargs)
        with app.test_request_context():
            from service.people.consent import RequestMeta
            from service.people.unsubscribe import unsubscribe

            unsubscribe(for_app(app), args[2].id, RequestMeta("test", None, None, None))
        return result

    monkeypatch.setattr(delivery, "compose", compose_then_unsubscribe)
    assert dispatch_inline(app) == ["cancelled"]
    assert not list(outbox.glob("*.eml"))


def test_a_connection_dropped_mid_data_is_retried(env, smtpd):
    app = smtp_app(env, smtpd)
    smtpd.handler.drop = 1
    api_signup(app.test_client(), "dropped@example.com")
    assert dispatch_inline(app) == ["deferred"]
    with time_machine.travel(utcnow() + timedelta(hours=1), tick=False):
        assert dispatch_inline(app) == ["sent"]
    assert [r.recipients for r in smtpd.received] == [["dropped@example.com"]]


def test_one_smtp_connection_is_reused_across_sends(env, smtpd):
    app = smtp_app(env, smtpd)
    client = app.test_client()
    for n in range(3):
        api_signup(client, f"reuse{n}@example.com")
    with app.app_context():
        from service.sending.context import transport_of

        transport = transport_of(app)
        assert dispatch_inline(app) == ["sent"] * 3
        first = transport._conn
        assert first is not None
        api_signup(client, "reuse3@example.com")
        assert dispatch_inline(app) == ["sent"]
        assert transport._conn is first


def test_a_connection_lost_while_recording_a_send_is_retried_not_resent(app, client, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from service.sending import delivery

    real = delivery._record_sent
    calls = []

    def drop_once(*args):
        calls.append(args)
        if len(calls) == 1:
            raise OperationalError("UPDATE", {}, Exception("server closed the connection"))
        return real(*args)

    def answer_lost(sent):
        raise OperationalError("UPDATE", {}, Exception("server closed the connection"))

    # PostgreSQL: the answer to the record sent ahead is lost (it committed, or not), then
    # the first try again too; SQLite: the first try of its record in the session.
    monkeypatch.setattr(delivery.sent_record, "answer", answer_lost)
    monkeypatch.setattr(delivery, "_record_sent", drop_once)
    monkeypatch.setattr(delivery, "RECORD_PAUSE", 0)
    api_signup(client, "recorded@example.com")
    assert dispatch_inline(app) == ["sent"]
    assert len(calls) == 2
    with app.app_context():
        guide = select(ScheduledEmail.status).where(ScheduledEmail.step_id == "guide")
        assert db.session.scalars(guide).one() == EmailStatus.SENT


class EditingTransport:
    """Writes the outbox as the embedded default does, and edits the sequence file while
    the message goes: what an owner saving the file mid-send does."""

    def __init__(self, inner, sequence_file: Path) -> None:
        self.inner, self.sequence_file = inner, sequence_file

    def send(self, msg, sender, recipient, step=None):
        text = self.sequence_file.read_text()
        edited = text.replace(
            'id = "knees-over-toes"\ndelay = "2d"', 'id = "knees-over-toes"\ndelay = "5d"'
        )
        assert edited != text
        self.sequence_file.write_text(edited)
        later = self.sequence_file.stat().st_mtime_ns + 1_000_000_000
        os.utime(self.sequence_file, ns=(later, later))  # a new version however coarse the clock
        return self.inner.send(msg, sender, recipient, step)

    def close(self) -> None:
        self.inner.close()


def test_a_send_renders_and_schedules_from_one_content_version(env, tmp_path):
    """The file changes between the render and the scheduling of the next step: the next
    step still comes from the version the guide was rendered with."""
    folder = tmp_path / "email_templates"
    shutil.copytree(DEFAULT_SEQUENCE_FILE.parent, folder)
    sequence_file = folder / "sequence.toml"
    app = make_app({**env, "SEQUENCE_FILE": str(sequence_file)})
    assert api_signup(app.test_client(), "ann@example.com").status_code == 202
    with app.app_context():
        snapshot = for_app(app)
        ctx = replace(snapshot, transport=EditingTransport(snapshot.transport, sequence_file))
        guide = db.session.scalars(select(ScheduledEmail)).one()
        assert deliver(ctx, guide.id) == "sent"
        sent_at = db.session.get(ScheduledEmail, guide.id).sent_at
        follow_up = db.session.scalars(
            select(ScheduledEmail).where(ScheduledEmail.step_id == "knees-over-toes")
        ).one()
        assert follow_up.due_at - sent_at == timedelta(days=2)  # the snapshot's delay
        # The edit was read by the next context: it is the file that changed, not the test.
        assert for_app(app).content.step("knees-over-toes").delay == timedelta(days=5)


class UnsubscribingTransport:
    """Sends as the embedded default does; while the first message goes, the person the
    batch's next row is for unsubscribes (their row is claimed, not yet re-read)."""

    def __init__(self, inner, app, next_subscriber: int) -> None:
        self.inner, self.app, self.next_subscriber = inner, app, next_subscriber
        self.sent: list[str] = []

    def send(self, msg, sender, recipient, step=None):
        if not self.sent:
            from service.people.consent import RequestMeta
            from service.people.unsubscribe import unsubscribe

            with self.app.test_request_context():  # a request of its own: its own session
                meta = RequestMeta("test", None, None, None)
                unsubscribe(for_app(self.app), self.next_subscriber, meta)
        self.sent.append(recipient)
        return self.inner.send(msg, sender, recipient, step)

    def close(self) -> None:
        self.inner.close()


def test_an_unsubscribe_while_the_batch_sends_stops_that_persons_row(app, client):
    """Rows claimed together are re-read one by one before each send: someone who
    unsubscribes while the row before theirs goes gets nothing."""
    from service.sending.dispatch import claim_due, deliver_batch

    for n in range(3):
        api_signup(client, f"batch{n}@example.com")
    with app.app_context():
        ctx = for_app(app)
        ids = claim_due(ctx, ctx.now())
        second = db.session.get_one(ScheduledEmail, ids[1]).subscriber_id
        transport = UnsubscribingTransport(ctx.transport, app, second)
        assert deliver_batch(replace(ctx, transport=transport), ids, lambda: False) == 2
        assert transport.sent == ["batch0@example.com", "batch2@example.com"]
        assert db.session.get_one(ScheduledEmail, ids[1]).status == EmailStatus.CANCELLED

"""A report names the email it is about: a complaint about the guide that arrives after the
next step left is about the guide, not the last email sent (SES, Mailgun and SendGrid quote
the email's Message-ID; Postmark does not, and its reports name no email)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine
from flask import Flask
from sqlalchemy import select

from service.core.extensions import db
from service.core.models import EmailStatus, ScheduledEmail, Subscriber, WebhookEvent
from service.people.records import describe, forget
from service.people.timeline import timeline
from service.sending.context import for_app
from service.webhooks.events import reported_step
from tests.helpers import api_signup, dispatch_inline
from tests.magnets import default_id
from tests.webhooks.payloads import ANN, Webhook

START = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
QUOTING = ("ses", "mailgun", "sendgrid")


def sent(app: Flask) -> list[tuple[str, str]]:
    """Ann's sent emails, oldest first: (step, Message-ID)."""
    with app.app_context():
        rows = db.session.execute(
            select(ScheduledEmail.step_id, ScheduledEmail.message_id)
            .where(ScheduledEmail.status == EmailStatus.SENT)
            .order_by(ScheduledEmail.id)
        ).all()
        db.session.rollback()
        return [(step, message_id) for step, message_id in rows]


def two_steps_sent(app: Flask, client) -> list[tuple[str, str]]:
    with time_machine.travel(START, tick=False):
        assert api_signup(client, ANN).status_code == 202
        assert dispatch_inline(app) == ["sent"]
    with time_machine.travel(START + timedelta(days=2, minutes=1), tick=False):
        assert dispatch_inline(app) == ["sent"]
    steps = sent(app)
    assert [step for step, _id in steps] == ["guide", "knees-over-toes"]
    return steps


def ann_id(app: Flask) -> int:
    with app.app_context():
        found = db.session.scalars(select(Subscriber.id).where(Subscriber.email == ANN)).one()
        db.session.rollback()
        return found


def test_a_late_complaint_is_about_the_email_it_names(app: Flask, client, webhook: Webhook):
    (guide, guide_id), (_second, second_id) = two_steps_sent(app, client)
    default, ann = default_id(app), ann_id(app)
    answer = webhook.send("complaint", message_id=guide_id)
    assert answer.get_json() == {"accepted": 1}
    with app.app_context():
        found = reported_step(ann)
        if webhook.name in QUOTING:
            assert found == (default, guide)
        else:
            assert found is None  # nothing named: the figures keep "the last email sent"
        described = describe(for_app(app), db.session.get_one(Subscriber, ann))
        reports = {e["step"]: [r["kind"] for r in e["reports"]] for e in described["emails"]}
        titles = [entry.title for entry in timeline(described) if entry.kind == "report"]
    if webhook.name in QUOTING:
        assert reports == {"guide": ["complaint"], "knees-over-toes": [], "ankle-mobility": []}
        assert titles == ["Marked “guide” as spam"]
    else:
        assert titles == []
    assert second_id != guide_id


def test_a_message_id_of_someone_elses_email_names_nothing(app: Flask, client, webhook: Webhook):
    two_steps_sent(app, client)
    with time_machine.travel(START, tick=False):
        api_signup(client, "bob@example.com")
        dispatch_inline(app)
    with app.app_context():
        bobs = db.session.scalars(
            select(ScheduledEmail.message_id)
            .join(Subscriber)
            .where(Subscriber.email == "bob@example.com", ScheduledEmail.status == EmailStatus.SENT)
        ).one()
    ann = ann_id(app)
    assert webhook.send("complaint", message_id=bobs).get_json() == {"accepted": 1}
    with app.app_context():
        assert reported_step(ann) is None
        assert [row.email_id for row in db.session.scalars(select(WebhookEvent))] == [None]


def test_an_erased_persons_reports_keep_no_email(app: Flask, client, webhook: Webhook):
    (_guide, guide_id), _second = two_steps_sent(app, client)
    webhook.send("hard", message_id=guide_id)
    ann = ann_id(app)
    with app.app_context():
        forget(for_app(app), db.session.get_one(Subscriber, ann))
        assert [row.email_id for row in db.session.scalars(select(WebhookEvent))] == [None]

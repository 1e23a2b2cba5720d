"""A bounce or a complaint stops every magnet a person took, as an unsubscribe does: each
enrolment shows as stopped with the reason, and coming back through one magnet's form
restarts that magnet only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine
from flask import Flask
from sqlalchemy import select

from service.core.extensions import db
from service.core.models import EmailStatus, ScheduledEmail, Subscriber
from service.people.enrolments import magnets_of, running
from tests.conftest import make_app
from tests.helpers import api_signup, dispatch_inline
from tests.magnets import KNEE, add_magnet, default_id
from tests.webhooks.payloads import POSTMARK_TOKEN, postmark_request

START = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
ANN = "ann@example.com"


def both_magnets(app: Flask) -> tuple[int, int]:
    """Ann took the knee checklist and the default magnet; both guides went out."""
    knee, default = add_magnet(app), default_id(app)
    client = app.test_client()
    with time_machine.travel(START, tick=False):
        assert api_signup(client, ANN, magnet=KNEE).status_code == 202
        assert api_signup(client, ANN).status_code == 202
    return knee, default


def stops(app: Flask) -> dict[int, str | None]:
    """Each magnet Ann took and why it stopped (None: still running)."""
    with app.app_context():
        ann = db.session.scalars(select(Subscriber)).one()
        found = {magnet.id: e.stop_reason for magnet, e in magnets_of(ann)}
        assert all((e.stopped_at is None) == (e.stop_reason is None) for _m, e in magnets_of(ann))
        db.session.rollback()
        return found


def open_emails(app: Flask) -> int:
    with app.app_context():
        statuses = db.session.scalars(select(ScheduledEmail.status)).all()
        return sum(s in EmailStatus.OPEN for s in statuses)


def webhook_app(env: dict[str, str]) -> Flask:
    return make_app({**env, "POSTMARK_WEBHOOK_TOKEN": POSTMARK_TOKEN})


def report(app: Flask, kind: str, n: int = 0) -> dict:
    """Postmark reports a bounce or a complaint about Ann: the webhook's answer."""
    body, headers = postmark_request(None, kind, n, ANN, "good")
    answer = app.test_client().post(
        "/webhooks/postmark", data=body, headers=headers, content_type="application/json"
    )
    return answer.get_json()


def test_a_complaint_stops_every_magnet_with_its_reason(env):
    app = webhook_app(env)
    knee, default = both_magnets(app)
    with time_machine.travel(START, tick=False):
        assert dispatch_inline(app) == ["sent", "sent"]
    assert stops(app) == {knee: None, default: None}
    assert report(app, "complaint") == {"accepted": 1}
    assert stops(app) == {knee: "complained", default: "complained"}
    assert open_emails(app) == 0


def test_a_hard_bounce_reported_by_the_provider_stops_every_magnet(env):
    app = webhook_app(env)
    knee, default = both_magnets(app)
    assert report(app, "hard") == {"accepted": 1}
    assert stops(app) == {knee: "bounced", default: "bounced"}
    # A complaint after the bounce: the person is complained, the stops keep their reason.
    assert report(app, "complaint", 1) == {"accepted": 1}
    assert stops(app) == {knee: "bounced", default: "bounced"}


def test_a_recipient_the_server_refuses_stops_every_magnet(env, smtpd):
    app = make_app({**env, "EMAIL_URL": smtpd.url})
    knee, default = both_magnets(app)
    smtpd.handler.rcpt_reply = "550 5.1.1 no such user"
    with time_machine.travel(START, tick=False):
        assert "bounced" in dispatch_inline(app)
    assert stops(app) == {knee: "bounced", default: "bounced"}
    assert open_emails(app) == 0


def test_coming_back_after_a_bounce_restarts_the_magnet_taken_again_only(env, smtpd):
    app = make_app({**env, "EMAIL_URL": smtpd.url})
    knee, default = both_magnets(app)
    smtpd.handler.rcpt_reply = "550 5.1.1 no such user"
    with time_machine.travel(START, tick=False):
        dispatch_inline(app)
    smtpd.handler.rcpt_reply = None
    with time_machine.travel(START + timedelta(days=1), tick=False):
        assert api_signup(app.test_client(), ANN, magnet=KNEE).status_code == 202
    # A bounced address comes back only by confirming (signup's rule): the knee magnet runs
    # again, the default stays stopped as bounced.
    assert stops(app) == {knee: None, default: "bounced"}
    with app.app_context():
        ann = db.session.scalars(select(Subscriber)).one()
        assert [m.id for m in running(ann)] == [knee]

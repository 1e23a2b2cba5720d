"""One person, several magnets: an enrolment and a consent entry per magnet taken; taking one
again resends its guide without restarting it; double opt-in starts the magnet signed up
for; leaving one magnet, leaving all, and coming back through one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine
from itsdangerous import URLSafeSerializer
from sqlalchemy import select

from service.capture.confirm import confirm
from service.core import tokens
from service.core.extensions import db
from service.core.models import (
    ConsentAction,
    ConsentRecord,
    EmailStatus,
    Enrolment,
    Purpose,
    ScheduledEmail,
    Subscriber,
    SubscriberStatus,
)
from service.core.settings import settings_of
from service.people.consent import RequestMeta
from service.people.enrolments import magnets_of, running
from service.people.unsubscribe import leave_magnet, unsubscribe
from service.sending.context import for_app
from tests.conftest import make_app
from tests.core.test_nudges import nudged
from tests.helpers import CSRF, api_signup, dispatch_inline
from tests.magnets import KNEE, add_magnet, default_id, magnet_context

START = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
META = RequestMeta("test", None, None, None)


def rows(app, **where) -> list[ScheduledEmail]:
    with app.app_context():
        query = select(ScheduledEmail).order_by(ScheduledEmail.id)
        for name, value in where.items():
            query = query.where(getattr(ScheduledEmail, name) == value)
        found = list(db.session.scalars(query))
        db.session.expunge_all()
        return found


def ann(app) -> Subscriber:
    return db.session.scalars(select(Subscriber)).one()


def test_each_magnet_taken_has_its_consent_entry_and_enrolment(app, client):
    knee, default = add_magnet(app), default_id(app)
    with time_machine.travel(START, tick=False):
        api_signup(client, "ann@example.com", magnet=KNEE)
    with time_machine.travel(START + timedelta(hours=1), tick=False):
        api_signup(client, "ANN@example.com")
    with app.app_context():
        assert len(db.session.scalars(select(Subscriber)).all()) == 1
        entries = db.session.scalars(select(ConsentRecord).order_by(ConsentRecord.id)).all()
        assert [(e.magnet_id, e.action) for e in entries] == [
            (knee, ConsentAction.CONSENT),
            (default, ConsentAction.CONSENT),
        ]
        for entry in entries:
            consent = magnet_context(app, entry.magnet_id).content.consent
            assert (entry.text, entry.text_version, entry.text_sha256) == (
                consent.text,
                consent.version,
                consent.sha256,
            )
        taken = magnets_of(ann(app))
        assert [(m.id, e.consent_id) for m, e in taken] == [
            (knee, entries[0].id),
            (default, entries[1].id),
        ]
    firsts = rows(app, purpose=Purpose.DRIP)
    assert [e.magnet_id for e in firsts] == [knee, default]
    assert sorted(nudged(app)) == [e.id for e in firsts]


def test_taking_a_magnet_again_resends_its_guide_and_does_not_restart_it(app, client):
    knee = add_magnet(app)
    with time_machine.travel(START, tick=False):
        api_signup(client, "ann@example.com", magnet=KNEE)
    with time_machine.travel(START + timedelta(days=2, hours=1), tick=False):
        dispatch_inline(app)  # the guide, and the follow-up due at 2 days
    with time_machine.travel(START + timedelta(days=2, hours=2), tick=False):
        dispatch_inline(app)
    drip_before = [(e.step_id, e.status) for e in rows(app, purpose=Purpose.DRIP)]
    with time_machine.travel(START + timedelta(days=2, hours=3), tick=False):
        assert api_signup(client, "ann@example.com", magnet=KNEE).status_code == 202
    [resend] = rows(app, purpose=Purpose.RESEND)
    assert resend.magnet_id == knee and resend.id in nudged(app)
    assert [(e.step_id, e.status) for e in rows(app, purpose=Purpose.DRIP)] == drip_before
    with app.app_context():
        assert len(db.session.scalars(select(Enrolment)).all()) == 1


def test_under_double_opt_in_the_confirmation_starts_the_magnet_signed_up_for(env):
    app = make_app({**env, "DOUBLE_OPT_IN": "true"})
    client = app.test_client()
    knee = add_magnet(app)
    with time_machine.travel(START, tick=False):
        api_signup(client, "ann@example.com", magnet=KNEE)
    [confirmation] = rows(app)
    assert (confirmation.purpose, confirmation.magnet_id) == (Purpose.CONFIRM, knee)
    with app.app_context(), app.test_request_context():
        subscriber, ids = confirm(for_app(app), ann(app).id, META)
        assert subscriber is not None and subscriber.status == SubscriberStatus.ACTIVE
        [guide] = [db.session.get_one(ScheduledEmail, i) for i in ids]
        assert (guide.purpose, guide.magnet_id) == (Purpose.DRIP, knee)
        assert guide.step_id == magnet_context(app, knee).content.first.id
        confirmation_entry = db.session.scalars(
            select(ConsentRecord).where(ConsentRecord.action == ConsentAction.CONFIRMATION)
        ).one()
        assert confirmation_entry.magnet_id == knee


def test_leaving_one_magnet_keeps_the_other_and_coming_back_restarts_it(app, client):
    knee, default = add_magnet(app), default_id(app)
    with time_machine.travel(START, tick=False):
        api_signup(client, "ann@example.com", magnet=KNEE)
        api_signup(client, "ann@example.com")
        dispatch_inline(app)
    with app.app_context(), app.test_request_context():
        subscriber_id = ann(app).id
        left = leave_magnet(for_app(app), subscriber_id, knee, META)
        assert left is not None
        assert [m.id for m in running(ann(app))] == [default]
        assert ann(app).status == SubscriberStatus.ACTIVE
    open_rows = rows(app, status=EmailStatus.PENDING)
    assert {e.magnet_id for e in open_rows} == {default}
    # Taking it again: it runs again from where it stopped, and its guide comes again.
    with time_machine.travel(START + timedelta(days=1), tick=False):
        api_signup(client, "ann@example.com", magnet=KNEE)
    with app.app_context():
        assert {m.id for m in running(ann(app))} == {knee, default}
    knee_open = [e for e in rows(app, status=EmailStatus.PENDING) if e.magnet_id == knee]
    assert {e.purpose for e in knee_open} == {Purpose.DRIP, Purpose.RESEND}


def test_one_click_stops_every_magnet_and_coming_back_through_one_restarts_that_one(app, client):
    knee, default = add_magnet(app), default_id(app)
    with time_machine.travel(START, tick=False):
        api_signup(client, "ann@example.com", magnet=KNEE)
        api_signup(client, "ann@example.com")
        dispatch_inline(app)
    with app.app_context(), app.test_request_context():
        unsubscribe(for_app(app), ann(app).id, META)
        assert running(ann(app)) == []
        reasons = {e.stop_reason for _m, e in magnets_of(ann(app))}
        assert reasons == {"unsubscribed"}
        withdrawal = db.session.scalars(
            select(ConsentRecord).where(ConsentRecord.action == ConsentAction.WITHDRAWAL)
        ).one()
        assert withdrawal.magnet_id is None  # about every magnet
        subscriber = ann(app)
        token = tokens.make_token(
            settings_of(app).secret_keys, tokens.UNSUBSCRIBE, subscriber, knee
        )
    assert rows(app, status=EmailStatus.PENDING) == []
    # The unsubscribed page's way back, from a knee email: the knee magnet alone resumes.
    with time_machine.travel(START + timedelta(days=1), tick=False):
        page = client.get(f"/unsubscribe/{token}").get_data(as_text=True)
        csrf = CSRF.search(page)[1]
        answer = client.post(f"/resubscribe/{token}", data={"consent": "yes", "csrf_token": csrf})
        assert answer.status_code == 303
    with app.app_context():
        assert [m.id for m in running(ann(app))] == [knee]
    assert {e.magnet_id for e in rows(app, status=EmailStatus.PENDING)} == {knee}
    assert default  # stays stopped


def test_an_unsubscribe_link_made_before_magnets_still_works(app, client):
    add_magnet(app)
    with time_machine.travel(START, tick=False):
        api_signup(client, "ann@example.com", magnet=KNEE)
        api_signup(client, "ann@example.com")
    with app.app_context():
        old = tokens.make_token(settings_of(app).secret_keys, tokens.UNSUBSCRIBE, ann(app))
    page = client.get(f"/unsubscribe/{old}")
    assert page.status_code == 200
    assert "Only stop emails about" not in page.get_data(as_text=True)
    assert client.post(f"/unsubscribe/{old}/magnet").status_code == 404
    answer = client.post(f"/unsubscribe/{old}", data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200
    with app.app_context():
        assert ann(app).status == SubscriberStatus.UNSUBSCRIBED


def test_a_forged_magnet_in_a_token_is_refused(app, client):
    with time_machine.travel(START, tick=False):
        api_signup(client, "ann@example.com")
    with app.app_context():
        keys = settings_of(app).secret_keys
        subscriber = ann(app)
        bad = URLSafeSerializer(list(reversed(keys)), salt="unsubscribe")
        wrong_type = bad.dumps([subscriber.id, subscriber.token_key, "knee"])
        no_such = tokens.make_token(keys, tokens.UNSUBSCRIBE, subscriber, 999)
    assert client.get(f"/unsubscribe/{wrong_type}").status_code == 404
    assert client.get(f"/unsubscribe/{no_such}").status_code == 200  # no such magnet: not offered
    assert client.post(f"/unsubscribe/{no_such}/magnet").status_code == 404


def test_someone_with_one_magnet_sees_only_the_full_unsubscribe(app, client):
    knee = add_magnet(app)
    with time_machine.travel(START, tick=False):
        api_signup(client, "ann@example.com", magnet=KNEE)
    with app.app_context():
        keys = settings_of(app).secret_keys
        token = tokens.make_token(keys, tokens.UNSUBSCRIBE, ann(app), knee)
    page = client.get(f"/unsubscribe/{token}").get_data(as_text=True)
    assert "Only stop emails about" not in page and "Unsubscribe</button>" in page
    api_signup(client, "ann@example.com")  # a second magnet: now the choice is offered
    assert "Only stop emails about" in client.get(f"/unsubscribe/{token}").get_data(as_text=True)

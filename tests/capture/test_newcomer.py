"""A stranger's signup: on PostgreSQL one statement (capture/newcomer.py) writes what the
full path writes; anyone who shares the mailbox or is suppressed takes the full path."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select, text

from service.core.autocommit import autocommit_driver
from service.core.extensions import db
from service.core.models import (
    COUNTED_PERSON,
    COUNTED_TAKER,
    ConsentAction,
    ConsentRecord,
    EmailStatus,
    Enrolment,
    Purpose,
    ScheduledEmail,
    Subscriber,
    SubscriberStatus,
    SuppressionReason,
)
from service.people.consent import RequestMeta
from service.people.unsubscribe import unsubscribe
from service.sending.context import for_app
from service.sending.suppression import suppress
from tests.core.test_nudges import nudged
from tests.helpers import api_signup
from tests.insights.figure_story import kept, recounted


@contextmanager
def statements(app: Flask) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def rows_of(app: Flask, address: str) -> tuple[Subscriber, list, list, list]:
    with app.app_context():
        person = db.session.scalars(select(Subscriber).where(Subscriber.email == address)).one()
        consents = db.session.scalars(
            select(ConsentRecord).where(ConsentRecord.subscriber_id == person.id)
        ).all()
        enrolments = db.session.scalars(
            select(Enrolment).where(Enrolment.subscriber_id == person.id)
        ).all()
        emails = db.session.scalars(
            select(ScheduledEmail).where(ScheduledEmail.subscriber_id == person.id)
        ).all()
        db.session.expunge_all()
        return person, list(consents), list(enrolments), list(emails)


def test_a_newcomer_gets_subscriber_consent_enrolment_and_guide_in_few_statements(
    app: Flask, client: FlaskClient, database_url: str
):
    assert api_signup(client, "warm@example.com", first_name="Wes").status_code == 202
    with statements(app) as seen:
        answer = api_signup(client, "ann@example.com", first_name="Ann", time_zone="Europe/Paris")
    assert answer.status_code == 202
    person, consents, enrolments, emails = rows_of(app, "ann@example.com")
    assert person.status == SubscriberStatus.ACTIVE
    assert (person.first_name, person.time_zone) == ("Ann", "Europe/Paris")
    assert person.token_key and person.mailbox_key == "ann@example.com"
    [entry] = consents
    with app.app_context():
        ctx = for_app(app)
        magnet_id, consent, first = ctx.magnet_id, ctx.content.consent, ctx.content.first
    assert (entry.action, entry.magnet_id, entry.source) == (
        ConsentAction.CONSENT,
        magnet_id,
        "api",
    )
    assert (entry.text, entry.text_sha256) == (consent.text, consent.sha256)
    [enrolment] = enrolments
    assert (enrolment.magnet_id, enrolment.consent_id) == (magnet_id, entry.id)
    [email] = emails
    assert (email.step_id, email.purpose, email.status) == (first.id, Purpose.DRIP, "pending")
    assert email.magnet_id == magnet_id and email.message_id
    assert email.created_at == entry.created_at == person.created_at
    assert email.id in nudged(app)
    if database_url.startswith("postgresql"):
        # The one statement goes to the driver as compiled once (core.driver_sql): nothing
        # passes through SQLAlchemy's execution, the ORM's unit of work included.
        assert seen == [], seen


def test_a_newcomer_whose_other_spelling_unsubscribed_must_confirm_first(
    app: Flask, client: FlaskClient
):
    api_signup(client, "bea@example.com")
    with app.app_context():
        bea = db.session.scalars(select(Subscriber.id)).one()
        unsubscribe(for_app(app), bea, RequestMeta("test", None, None, None))
    assert api_signup(client, "bea+again@example.com").status_code == 202
    person, _consents, _enrolments, emails = rows_of(app, "bea+again@example.com")
    assert person.status == SubscriberStatus.PENDING
    assert [e.purpose for e in emails] == [Purpose.CONFIRM]


def test_a_suppressed_address_without_a_row_must_confirm_first(app: Flask, client: FlaskClient):
    with app.app_context():
        suppress(for_app(app), "cy@example.com", SuppressionReason.ERASED)
        db.session.commit()
    assert api_signup(client, "cy@example.com").status_code == 202
    person, _consents, _enrolments, emails = rows_of(app, "cy@example.com")
    assert person.status == SubscriberStatus.PENDING
    assert [(e.purpose, e.status) for e in emails] == [(Purpose.CONFIRM, EmailStatus.PENDING)]


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_a_refused_newcomer_statement_falls_back_to_the_full_path(app: Flask, client, caplog):
    """Whatever constraint refuses the one statement (it then wrote nothing), the signup goes
    the full path and is answered 202, not 503; the refusal is logged with its name. The
    database refuses the first subscriber insert once (a sequence is not rolled back)."""
    with app.app_context():
        for sql in (
            "CREATE SEQUENCE refusals",
            "CREATE FUNCTION refuse_once() RETURNS trigger AS $$ BEGIN "
            "IF nextval('refusals') = 1 THEN "
            "RAISE unique_violation USING CONSTRAINT = 'test_refusal'; END IF; "
            "RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_once BEFORE INSERT ON subscriber "
            "FOR EACH ROW EXECUTE FUNCTION refuse_once()",
        ):
            db.session.execute(text(sql))
        db.session.commit()
    try:
        assert api_signup(client, "ann@example.com").status_code == 202
    finally:  # the database is this worker's for the tests after this one too
        with app.app_context():
            db.session.execute(text("DROP TRIGGER refuse_once ON subscriber"))
            db.session.execute(text("DROP FUNCTION refuse_once()"))
            db.session.execute(text("DROP SEQUENCE refusals"))
            db.session.commit()
    person, consents, _enrolments, emails = rows_of(app, "ann@example.com")
    assert person.status == SubscriberStatus.ACTIVE and len(consents) == 1
    assert [e.purpose for e in emails] == [Purpose.DRIP]
    assert "refused (test_refusal)" in caplog.text


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_a_newcomer_is_counted_once_by_its_statement_and_the_next_insert_by_the_triggers(
    app: Flask, client
):
    """The statement appends the person's figure rows itself and names its rows so that the
    insert triggers skip them: every figure counts ann once. The names last only its
    transaction: a person inserted next on the same connection is counted by the triggers."""
    assert api_signup(client, "ann@example.com").status_code == 202
    with app.app_context():
        magnet_id, day = for_app(app).magnet_id, datetime.now(UTC).strftime("%Y-%m-%d")
        people = {(m, "people", "signed_up") for m in (0, magnet_id)}
        mine = people | {(m, "signups", day) for m in (0, magnet_id)}
        figures = kept()
        assert {key: figures.get(key) for key in mine} == dict.fromkeys(mine, 1)
        assert figures == recounted()
        with autocommit_driver() as driver:  # the pool's one connection: the statement's
            named = driver.execute(
                "SELECT current_setting(%s, true), current_setting(%s, true)",
                (COUNTED_PERSON, COUNTED_TAKER),
            ).fetchone()
            driver.execute(
                "INSERT INTO subscriber (email, email_key, mailbox_key, status, created_at, "
                "updated_at, token_key, guide_downloads, legacy_tokens) VALUES ('bob@example."
                "com', 'bob@example.com', 'bob@example.com', 'active', now(), now(), 'k', 0, "
                "false)"
            )
        assert named in (("", ""), (None, None))
        figures = kept()
        assert {key: figures[key] for key in people} == {
            (0, "people", "signed_up"): 2,
            (magnet_id, "people", "signed_up"): 1,
        }
        assert figures == recounted()

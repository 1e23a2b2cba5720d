"""A bounce or complaint counts under the email its report names (else the last drip email
the person got), and a magnet's "guide downloaded" counts those who downloaded its own
guide: the kept figures against a recount of the rows at each turn."""

from __future__ import annotations

from datetime import timedelta

import time_machine
from sqlalchemy import select, update

from service.core.extensions import db
from service.core.models import EventKind, ScheduledEmail, Subscriber
from service.people.downloads import record_download
from service.people.records import forget
from service.sending.context import for_app
from tests.helpers import api_signup
from tests.insights.figure_story import (
    LATER,
    kept,
    message_id,
    person,
    recounted,
    report,
    story,
)
from tests.magnets import KNEE, magnet_context


def test_a_complaint_counts_under_the_email_it_names(app):
    knee, default = story(app)
    with app.app_context():
        found = kept()
        assert found == recounted()
        # ann's last email is a second step; her complaint names her default guide.
        assert found[(0, "complained", "guide")] == 1
        assert found[(default, "complained", "guide")] == 1
        # Of the knee checklist (not the email named) she counts under its last one.
        assert found[(knee, "complained", "knees-over-toes")] == 1
        # bob's report names nothing: his last email.
        assert found[(0, "complained", "knees-over-toes")] == 1
        assert found[(default, "complained", "knees-over-toes")] == 1


def test_a_magnets_downloaded_counts_its_own_guide(app):
    knee, default = story(app)
    with app.app_context():
        found = kept()
        assert found[(0, "people", "downloaded")] == 2  # ann and bob, any guide
        assert found[(knee, "people", "downloaded")] == 1  # ann
        assert found[(default, "people", "downloaded")] == 1  # bob, not ann
        # cy downloads the default guide, then takes the knee checklist: not its download.
        assert record_download(magnet_context(app, default), person("cy@example.com"))
    with time_machine.travel(LATER, tick=False):
        assert api_signup(app.test_client(), "cy@example.com", magnet=KNEE).status_code == 202
    with app.app_context():
        found = kept()
        assert found == recounted()
        assert found[(knee, "people", "signed_up")] == 2
        assert found[(knee, "people", "downloaded")] == 1
        assert found[(default, "people", "downloaded")] == 2
        ann = db.session.get_one(Subscriber, person("ann@example.com"))
        forget(for_app(app), ann)
        after = kept()
        assert after == recounted()
        assert (knee, "people", "downloaded") not in after
        assert after[(0, "people", "downloaded")] == after[(default, "people", "downloaded")] == 2


def test_a_send_after_the_named_email_moves_nothing_a_later_report_moves_it(app):
    knee, default = story(app)
    with app.app_context():
        ann = person("ann@example.com")
        # Her default third step leaves after her complaint (it raced the cancellation).
        raced = db.session.scalars(
            select(ScheduledEmail.id).where(
                ScheduledEmail.subscriber_id == ann,
                ScheduledEmail.magnet_id == default,
                ScheduledEmail.step_id == "ankle-mobility",
                ScheduledEmail.status == "cancelled",
            )
        ).one()
        db.session.execute(
            update(ScheduledEmail)
            .where(ScheduledEmail.id == raced)
            .values(status="sent", sent_at=LATER + timedelta(minutes=1))
        )
        db.session.commit()
        found = kept()
        assert found == recounted()
        assert found[(0, "complained", "guide")] == found[(default, "complained", "guide")] == 1
        second = message_id("ann@example.com", knee, "knees-over-toes")
    # She stays complained; the latest report now names the knee checklist's second step.
    report(app, "b-ann", EventKind.HARD_BOUNCE, "ann@example.com", second)
    with app.app_context():
        found = kept()
        assert found == recounted()
        assert found.get((0, "complained", "guide")) is None
        assert found[(0, "complained", "knees-over-toes")] == 2  # ann and bob
        assert found[(knee, "complained", "knees-over-toes")] == 1
        # The report names no email of the default's: its last one, the raced one.
        assert found[(default, "complained", "ankle-mobility")] == 1
        forget(for_app(app), db.session.get_one(Subscriber, ann))
        assert kept() == recounted()

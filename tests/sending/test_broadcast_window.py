"""A broadcast's optional send window: hours and days in each recipient's own zone, as a
sequence step's; applied when the send starts, when it resumes and when the failed are
sent again."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape

import pytest
import time_machine
from sqlalchemy import select, update

from service.core.extensions import db
from service.core.models import ScheduledEmail, Subscriber
from service.sending import broadcasts
from service.sending.broadcast_audience import Audience
from service.sending.context import for_app
from tests.broadcast_helpers import TEXT, add_subscribers, deliver_ids, hand_out
from tests.helpers import sign_in_owner
from tests.sending.test_broadcast_cli import folder, run
from tests.web.test_broadcast_form import form

MONDAY = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 09:00 in New York, the site's zone
SATURDAY = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
ZONES = (None, "Asia/Tokyo", "Europe/London", "America/Los_Angeles")


def due_times(app, broadcast_id: int) -> dict[int, datetime]:
    with app.app_context():
        found = db.session.execute(
            select(ScheduledEmail.subscriber_id, ScheduledEmail.due_at).where(
                ScheduledEmail.broadcast_id == broadcast_id, ScheduledEmail.status == "pending"
            )
        )
        return {who: due for who, due in found}


def test_each_recipient_gets_it_in_the_window_of_their_own_zone(app, outbox):
    people = add_subscribers(app, len(ZONES))
    with app.app_context(), time_machine.travel(MONDAY, tick=False):
        for who, zone in zip(people, ZONES, strict=True):
            moved = update(Subscriber).where(Subscriber.id == who).values(time_zone=zone)
            db.session.execute(moved)
        ctx = for_app(app)
        broadcast = broadcasts.create(ctx, TEXT, Audience(), "test", window=("9-17", "mon-fri"))
        broadcast_id = broadcast.id
        assert broadcasts.send(ctx, broadcast_id) == "sending to 4 recipients"
    assert due_times(app, broadcast_id) == {
        people[0]: MONDAY,  # New York (the site's zone): 09:00, open
        people[1]: datetime(2026, 3, 3, 0, 0, tzinfo=UTC),  # Tokyo: 23:00, Tuesday 09:00
        people[2]: MONDAY,  # London: 14:00, open
        people[3]: datetime(2026, 3, 2, 17, 0, tzinfo=UTC),  # Los Angeles: 06:00, 09:00 PST
    }
    with time_machine.travel(MONDAY, tick=False):
        handed = hand_out(app)
        assert len(handed) == 2  # only those whose window is open
        deliver_ids(app, handed)
        with app.app_context():
            broadcasts.pause(for_app(app), broadcast_id)
    with app.app_context(), time_machine.travel(SATURDAY, tick=False):
        broadcasts.resume(for_app(app), broadcast_id)  # a weekend: nothing goes at once
        db.session.execute(  # as if the server had refused New York's
            update(ScheduledEmail)
            .where(ScheduledEmail.subscriber_id == people[0])
            .values(status="failed")
        )
        assert broadcasts.retry_failed(for_app(app), broadcast_id) == 1
        assert hand_out(app) == []
    assert due_times(app, broadcast_id) == {
        people[0]: datetime(2026, 3, 9, 13, 0, tzinfo=UTC),  # 09:00 EDT in New York
        people[1]: datetime(2026, 3, 9, 0, 0, tzinfo=UTC),  # Monday 09:00 in Tokyo
        people[3]: datetime(2026, 3, 9, 16, 0, tzinfo=UTC),  # 09:00 PDT: summer time began
    }


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # no query: one backend
def test_the_form_and_the_cli_take_a_window_and_refuse_a_bad_one(app, client, tmp_path):
    add_subscribers(app, 1)
    news = str(folder(tmp_path, subject_txt="Hi", body_md="News."))
    bad = run(app, "create", news, "--hours", "25-3")
    assert bad.exit_code != 0 and "window hours '25-3'" in bad.output
    made = run(app, "create", news, "--hours", "9-17", "--days", "mon-fri")
    assert "send window: 9-17, mon-fri, in each recipient's own zone" in made.output
    made_id = re.search(r"broadcast (\d+) created", made.output)[1]
    assert "send window: 9-17, mon-fri" in run(app, "status", made_id).output
    sign_in_owner(app, client)
    refused = client.post(
        "/admin/broadcasts/new",
        data=form(client, subject="Hi", body_md="News.", window_days="someday", action="review"),
    )
    assert refused.status_code == 422 and "Send window days" in unescape(refused.get_data(True))
    answer = client.post(
        "/admin/broadcasts/new",
        data=form(client, subject="Hi", body_md="News.", window_hours="8-20", action="review"),
    )
    page = client.get(answer.location).get_data(as_text=True)
    assert re.search(r"Send window: 8-20, mon-sun, in each recipient.s own zone", unescape(page))

"""The owner is told what EMAIL_MIN_GAP will do to a broadcast: before it starts, how many
recipients just got (or are due) another email and until about when theirs waits (the
review page, `broadcast create` and `status`); once it sends, how many rows it holds."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import event, select

from service.core.extensions import db
from service.core.models import EmailStatus, Purpose, ScheduledEmail
from service.sending import broadcast_gap
from service.sending.broadcast_audience import TOOK, Audience
from service.sending.context import for_app
from service.sending.dispatch import deliver_batch
from tests.broadcast_helpers import add_subscribers
from tests.helpers import sign_in_owner
from tests.magnets import default_id
from tests.sending.test_broadcast_cli import folder, run
from tests.sending.test_spacing import GAP, NOW, row

WARNING = re.compile(r'<p class="warning" id="gap-warning">([^<]+)</p>')


def about(app, when) -> str:
    with app.app_context():
        zone = for_app(app).content.default_zone
    return f"about {when.astimezone(zone):%Y-%m-%d %H:%M} ({zone})"


def recent_mail(app) -> list[int]:
    """Five people: two got a sequence email within the hour, one is due one now, one got
    theirs long ago, one only an owner's test (which never counts)."""
    people = add_subscribers(app, 5)
    magnet = default_id(app)
    with app.app_context():
        for who, minutes in ((people[0], 10), (people[1], 30), (people[2], 120)):
            row(who, magnet, f"s{who}", Purpose.DRIP, status=EmailStatus.SENT,
                sent_at=NOW - timedelta(minutes=minutes))  # fmt: skip
        row(people[3], magnet, "due", Purpose.DRIP, due_at=NOW - timedelta(minutes=5))
        row(people[4], None, "t", Purpose.TEST, status=EmailStatus.SENT, sent_at=NOW)
        db.session.commit()
    return people


def test_foreseen_before_the_start_counted_once_it_sends(app, client, tmp_path):
    recent_mail(app)
    with app.app_context(), time_machine.travel(NOW, tick=False):
        wait = broadcast_gap.predicted(Audience(), NOW, GAP)
        assert wait is not None and wait.people == 3  # the sent 10 and 30 min ago, the due
        assert wait.until == NOW + timedelta(minutes=55)  # the due one goes first, at -5 min
        assert broadcast_gap.predicted(Audience(), NOW, timedelta(0)) is None  # rule off
        assert broadcast_gap.predicted(Audience(), NOW + 2 * GAP, GAP) is None  # later: none
    foreseen = about(app, NOW + timedelta(minutes=55))
    with time_machine.travel(NOW, tick=False):
        created = run(app, "create", str(folder(tmp_path, subject_txt="Hi", body_md="News.")))
        assert created.exit_code == 0, created.output
        broadcast_id = int(re.search(r"broadcast (\d+) created", created.output)[1])
        assert "3 recipients got or are due another email" in created.output
        assert foreseen in created.output
        assert foreseen in run(app, "status", str(broadcast_id)).output
        sign_in_owner(app, client)
        page = client.get(f"/admin/broadcasts/{broadcast_id}/review").get_data(as_text=True)
        assert "3 recipients" in WARNING.search(page)[1] and foreseen in page
        # The shared preview: phone and desktop widths, as a step's preview has them.
        assert 'class="preview-html phone"' in page and 'class="preview-html desktop"' in page
        assert run(app, "send", str(broadcast_id), "--yes").exit_code == 0
        with app.app_context():
            ids = list(
                db.session.scalars(
                    select(ScheduledEmail.id).where(ScheduledEmail.broadcast_id == broadcast_id)
                )
            )
            assert deliver_batch(for_app(app), ids, lambda: False) == 2  # the other two
        held = about(app, NOW + GAP)  # the last: behind the due one, the whole gap
        status = run(app, "status", str(broadcast_id)).output
        assert "3 recipients just got another email" in status and held in status
        page = client.get(f"/admin/broadcasts/{broadcast_id}").get_data(as_text=True)
        assert "3 recipients" in WARNING.search(page)[1] and held in page


def test_the_count_before_the_start_stops_at_a_bound_and_says_so(app, monkeypatch):
    """Past COUNTED emails in the gap the count is a lower bound, said as such; the latest
    (the time the last of them goes) is still exact, as the latest are read first."""
    recent_mail(app)
    monkeypatch.setattr(broadcast_gap, "COUNTED", 1)  # reads the latest two of the three
    with app.app_context(), time_machine.travel(NOW, tick=False):
        wait = broadcast_gap.predicted(Audience(), NOW, GAP)
        assert wait is not None and (wait.people, wait.at_least) == (2, True)
        assert wait.until == NOW + timedelta(minutes=55)  # the due one, 5 min ago, is latest
        assert wait.sentence(for_app(app).content.default_zone).startswith(
            "EMAIL_MIN_GAP (1h): at least 2 recipients got or are due another email"
        )
    monkeypatch.setattr(broadcast_gap, "COUNTED", 3)  # all three fit: exact, no bound
    with app.app_context(), time_machine.travel(NOW, tick=False):
        wait = broadcast_gap.predicted(Audience(), NOW, GAP)
        assert wait is not None and (wait.people, wait.at_least) == (3, False)


def test_past_the_bound_with_none_of_its_audience_among_the_latest_it_says_so(app, monkeypatch):
    """The latest emails of the gap went to others: some of its recipients may still be
    among the older ones, so it does not say nobody waits; the latest read bounds when."""
    recent_mail(app)
    nobody_took = Audience(TOOK, (9999,))
    with app.app_context(), time_machine.travel(NOW, tick=False):
        assert broadcast_gap.predicted(nobody_took, NOW, GAP) is None  # all read: exact
        monkeypatch.setattr(broadcast_gap, "COUNTED", 1)
        wait = broadcast_gap.predicted(nobody_took, NOW, GAP)
        assert wait is not None and (wait.people, wait.at_least) == (0, True)
        assert wait.until == NOW + timedelta(minutes=55)
        assert "over 1 emails went out or are due within 1h before it" in wait.sentence(
            for_app(app).content.default_zone
        )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # no query: one backend
def test_nobody_waits_nothing_is_said(app, client, tmp_path):
    add_subscribers(app, 2)
    created = run(app, "create", str(folder(tmp_path, subject_txt="Hi", body_md="News.")))
    assert "EMAIL_MIN_GAP" not in created.output
    broadcast_id = int(re.search(r"broadcast (\d+) created", created.output)[1])
    sign_in_owner(app, client)
    page = client.get(f"/admin/broadcasts/{broadcast_id}/review").get_data(as_text=True)
    assert "gap-warning" not in page and "2 recipients" in page


def test_the_count_before_the_start_reads_a_range_of_the_sent_at_index(pg_app):
    """Not a scan of every sent row: the plan (sequential scans off, as on a table too big
    for them) reads the partial index of sent rows by sent_at."""
    sent: list[tuple[str, dict]] = []

    def note(conn, cursor, statement, parameters, context, executemany):
        if "UNION ALL" in statement:
            sent.append((statement, dict(parameters)))

    with pg_app.app_context():
        event.listen(db.engine, "before_cursor_execute", note)
        try:
            broadcast_gap.predicted(Audience(), NOW, GAP)
        finally:
            event.remove(db.engine, "before_cursor_execute", note)
        with db.engine.connect() as conn:
            conn.exec_driver_sql("SET enable_seqscan = off")
            statement, parameters = sent[0]
            plan = [row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, parameters)]
    assert any("ix_scheduled_email_sent_at" in line for line in plan), plan

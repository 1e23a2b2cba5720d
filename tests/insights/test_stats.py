"""The dashboard's figures from real signups, sends, bounces, complaints and unsubscribes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select, text

from service.core.extensions import db
from service.core.models import EventKind, Subscriber
from service.insights import rollup, stats
from service.insights.rollup_sql import backfill
from service.people.consent import RequestMeta
from service.people.records import forget
from service.people.unsubscribe import unsubscribe
from service.sending.context import for_app
from service.webhooks.events import apply
from service.webhooks.normalized import Event
from tests.conftest import make_app
from tests.helpers import api_signup, dispatch_inline, parts

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
META = RequestMeta("unsubscribe-link", "192.0.2.1", "test", None)


def signup_and_send(app, client, address: str, at: datetime, after: float) -> list[str]:
    with time_machine.travel(at, tick=False):
        assert api_signup(client, address).status_code == 202
    with time_machine.travel(at + timedelta(seconds=after), tick=False):
        return dispatch_inline(app)


def report(app, provider_id: str, kind: str, address: str, at: datetime) -> None:
    with app.app_context(), time_machine.travel(at, tick=False):
        event = Event("postmark", provider_id, kind, address, at, None)
        assert apply(for_app(app), [event]) == 1


def subscriber_id(address: str) -> int:
    return db.session.scalar(select(Subscriber.id).where(Subscriber.email == address))


@pytest.fixture
def story(env, smtpd):
    """Five signups on 2 March: ann, dan and eve get the guide, bob's address bounces at
    once, cat's email is refused for its content. Two days later ann, dan and eve get the
    second step; then ann unsubscribes, dan complains and eve's address bounces."""
    app = make_app({**env, "EMAIL_URL": smtpd.url})
    client = app.test_client()
    assert signup_and_send(app, client, "ann@example.com", T0, 2) == ["sent"]
    smtpd.handler.rcpt_reply = "550 5.1.1 no such user"
    assert signup_and_send(app, client, "bob@example.com", T0 + timedelta(hours=1), 3) == [
        "bounced"
    ]
    smtpd.handler.rcpt_reply = None
    smtpd.handler.script = ["554 5.7.1 message content rejected"]
    assert signup_and_send(app, client, "cat@example.com", T0 + timedelta(hours=2), 1) == ["failed"]
    assert signup_and_send(app, client, "dan@example.com", T0 + timedelta(hours=3), 2) == ["sent"]
    assert signup_and_send(app, client, "eve@example.com", T0 + timedelta(hours=4), 4) == ["sent"]
    guide_link = next(w for w in parts(smtpd.received[0].message)[0].split() if "/guide/" in w)
    with time_machine.travel(T0 + timedelta(hours=5), tick=False):
        assert client.get(guide_link.split("news.example.org", 1)[1]).status_code == 200

    later = T0 + timedelta(days=2, hours=5)
    with time_machine.travel(later, tick=False):
        assert dispatch_inline(app) == ["sent"] * 3
    with app.app_context(), time_machine.travel(later + timedelta(hours=1), tick=False):
        unsubscribe(for_app(app), subscriber_id("ann@example.com"), META)
    report(app, "c-1", EventKind.COMPLAINT, "dan@example.com", later + timedelta(hours=2))
    report(app, "b-1", EventKind.HARD_BOUNCE, "eve@example.com", later + timedelta(hours=3))
    return app


def test_each_step_counts_sends_failures_bounces_unsubscribes_and_complaints(story):
    with story.app_context():
        figures = {f.step_id: f for f in stats.step_figures(for_app(story).content)}
        order = [f.step_id for f in stats.step_figures(for_app(story).content)]
        assert order == [step.id for step in for_app(story).content.steps]
    guide, second = figures["guide"], figures["knees-over-toes"]
    assert (guide.sent, guide.failed, guide.bounced) == (3, 1, 1)
    assert (guide.unsubscribed, guide.complaints) == (0, 0)
    assert (second.sent, second.failed, second.bounced) == (3, 0, 1)
    assert (second.unsubscribed, second.complaints) == (1, 1)
    assert figures["coaching"] == stats.StepFigures("coaching")


def test_the_funnel(story):
    with story.app_context():
        funnel = stats.funnel(for_app(story).content, double_opt_in=False)
    assert [(s.label, s.count) for s in funnel] == [
        ("Signed up", 5),
        ("Guide sent", 3),
        ("Guide downloaded", 1),
        ("Finished the sequence", 0),
    ]


def test_time_to_inbox_of_the_first_emails_of_the_last_day(story):
    with story.app_context():
        sequence = for_app(story).content
        inbox = stats.time_to_inbox(T0 + timedelta(hours=6), sequence)
        # 2 s, 2 s and 4 s: each the upper bound of its one-second bucket.
        assert inbox == stats.Percentiles(timedelta(seconds=3), timedelta(seconds=5), 3)
        assert stats.time_to_inbox(T0 + timedelta(days=3), sequence) is None  # only step 2
        # The window starts at the hour 24 hours before: T0 + 1 day + 1 h reads from T0 + 1 h,
        # leaving ann's (sent at T0) out.
        later = stats.time_to_inbox(T0 + timedelta(days=1, hours=1, minutes=30), sequence)
        assert later == stats.Percentiles(timedelta(seconds=3), timedelta(seconds=5), 2)


def test_the_oldest_email_due_and_not_sent(story):
    client = story.test_client()
    now = T0 + timedelta(days=2, hours=10)
    with story.app_context():
        assert stats.oldest_due_unsent(now) is None  # ann, dan and eve's next emails cancelled
    with time_machine.travel(now, tick=False):
        assert api_signup(client, "fay@example.com").status_code == 202  # no pass runs
    with time_machine.travel(now + timedelta(minutes=5), tick=False):
        assert api_signup(client, "gus@example.com").status_code == 202
    with story.app_context():
        assert stats.oldest_due_unsent(now + timedelta(minutes=10)) == timedelta(minutes=10)
        assert stats.oldest_due_unsent(now - timedelta(minutes=1)) is None  # not due yet


def test_signups_per_day_counts_utc_days_and_fills_the_gaps(app, client):
    moments = [
        datetime(2026, 1, 20, 12, 0, tzinfo=UTC),  # 40 days before: not shown
        datetime(2026, 2, 28, 0, 0, tzinfo=UTC),  # the first day shown, at its first second
        datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC),
        datetime(2026, 3, 2, 0, 0, 1, tzinfo=UTC),
        datetime(2026, 3, 2, 7, 0, tzinfo=UTC),
    ]
    for n, moment in enumerate(moments):
        with time_machine.travel(moment, tick=False):
            assert api_signup(client, f"p{n}@example.com").status_code == 202
    with app.app_context():
        days = stats.signups_per_day(datetime(2026, 3, 2, 8, 0, tzinfo=UTC), days=3)
    assert [(d.day, d.count) for d in days] == [
        (date(2026, 2, 28), 1),
        (date(2026, 3, 1), 1),
        (date(2026, 3, 2), 2),
    ]
    with app.app_context():
        month = stats.signups_per_day(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    assert len(month) == 30 and month[-1].day == date(2026, 3, 2)
    assert sum(d.count for d in month) == 4


def test_finishing_the_sequence(app, client):
    with time_machine.travel(T0, tick=False):
        assert api_signup(client, "fin@example.com").status_code == 202
    moment = T0
    for _ in range(20):  # a pass a day: the sequence is 14 days long
        with time_machine.travel(moment, tick=False):
            dispatch_inline(app)
        moment += timedelta(days=1)
    with app.app_context():
        funnel = {s.label: s.count for s in stats.funnel(for_app(app).content, False)}
        steps = stats.step_figures(for_app(app).content)
    assert funnel["Finished the sequence"] == 1
    assert [f.sent for f in steps] == [1] * len(steps)


def test_percentiles_are_nearest_rank():
    values = [float(n) for n in range(1, 101)]
    assert stats.percentile(values, 50) == 50
    assert stats.percentile(values, 99) == 99
    assert stats.percentile([7.0], 99) == 7


def kept() -> dict[tuple[int, str, str], int]:
    """Every figure as the dashboard reads it: totals plus unfolded deltas, zeros left out."""
    rows = db.session.execute(
        text(
            "SELECT magnet_id, name, part, SUM(n) FROM (SELECT magnet_id, name, part, n "
            "FROM figure_total UNION ALL SELECT magnet_id, name, part, n FROM figure_delta) f "
            "GROUP BY magnet_id, name, part"
        )
    ).all()
    return {(m, name, part): n for m, name, part, n in rows if n}


def recomputed() -> dict[tuple[int, str, str], int]:
    """The figures computed afresh from the rows (what migration 0013 backfills)."""
    backfill(db.session.connection())
    return kept()


def test_kept_figures_equal_the_rows_recomputed_through_folds_and_erasure(story):
    with story.app_context():
        before = kept()
        assert before[(0, "people", "signed_up")] == 5
        assert rollup.fold(T0 + timedelta(days=1)) > 0
        assert db.session.scalar(text("SELECT count(*) FROM figure_delta")) == 0
        assert kept() == before
        assert recomputed() == before

        for address in ("ann@example.com", "eve@example.com"):  # unsubscribed, bounced
            forget(for_app(story), db.session.get(Subscriber, subscriber_id(address)))
        after = kept()
        assert after[(0, "people", "signed_up")] == 3
        second = {f.step_id: f for f in stats.step_figures(for_app(story).content)}[
            "knees-over-toes"
        ]
        assert (second.sent, second.unsubscribed, second.bounced) == (1, 0, 0)
        assert recomputed() == after

        rollup.fold(T0 + timedelta(days=3))  # time to inbox of hours no page reads goes
        stale = "2026-03-03T08"  # 2 days before
        assert kept() == {k: n for k, n in after.items() if k[1] != "inbox" or k[2] >= stale}
        assert any(k[1] == "inbox" and k[2] < stale for k in after)

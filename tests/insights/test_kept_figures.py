"""The click and broadcast figures the triggers keep (migration 0017) against a recount of
the rows (GROUP BY, kept_sql.backfill) after a mix of sends, human clicks, scanner bursts,
HEAD checks, an unsubscribe, a complaint, erasure and the 13-month purge of clicks."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select, text

from service.content.broadcast_body import BroadcastText
from service.core.clock import utcnow
from service.core.extensions import db
from service.core.models import EventKind, ScheduledEmail, Subscriber
from service.insights import clicks, kept_sql, rollup
from service.insights.broadcast_figures import figures
from service.insights.clicks import ClickFigures, LinkFigure
from service.people.consent import RequestMeta
from service.people.housekeeping import purge_old_clicks
from service.people.records import forget
from service.people.unsubscribe import unsubscribe
from service.sending import broadcasts
from service.sending.broadcast_audience import Audience
from service.sending.broadcast_progress import progress
from service.sending.context import for_app
from service.webhooks.events import apply
from service.webhooks.normalized import Event
from tests.broadcast_helpers import add_subscribers, deliver_ids, hand_out
from tests.click_helpers import BLOG, linking_app, send_guide, tracked_paths
from tests.helpers import outbox_messages, parts

A, B, C = (f"https://news.example.org/{page}" for page in ("a", "b", "c"))
NEWS = BroadcastText(
    "News for {{ first_name }}",
    body_md=f"# Hello\n\n[one]({A}), [two]({B}) and [three]({C}).\n",
)
META = RequestMeta("unsubscribe-link", "192.0.2.1", "test", None)


def kept() -> dict[tuple[int, str, str], int]:
    """Every click and broadcast figure: totals plus unfolded deltas."""
    rows = db.session.execute(
        text(
            "SELECT magnet_id, name, part, SUM(n) FROM (SELECT magnet_id, name, part, n "
            f"FROM figure_total WHERE {kept_sql.OURS} UNION ALL SELECT magnet_id, name, part, n "
            f"FROM figure_delta WHERE {kept_sql.OURS}) f GROUP BY magnet_id, name, part"
        )
    ).all()
    return {(m, name, part): n for m, name, part, n in rows if n}


def recounted() -> dict[tuple[int, str, str], int]:
    kept_sql.backfill(db.session.connection())
    found = kept()
    db.session.rollback()  # the kept rows stay as the triggers wrote them
    return found


def paths_by_address(outbox) -> dict[str, dict[str, str]]:
    """Each recipient's click-redirect paths (of every email they got) by the URL."""
    found: dict[str, dict[str, str]] = {}
    for message in outbox_messages(outbox):
        address = message["To"].addresses[0].addr_spec
        found.setdefault(address, {}).update(tracked_paths(parts(message)[1]))
    return found


@pytest.fixture
def mixed(env, tmp_path, outbox):
    """Two guides (ann clicks BLOG) and a broadcast of three links to them and four more:
    p0 clicks A twice and B; p1's scanner bursts A, B, C; p2's client sends HEAD on A, then
    p2 clicks B; p3 clicks A, then within 2 s B and C (the burst re-marks p3's A); p4
    unsubscribes and p5 complains after it reached them."""
    app = linking_app(env, tmp_path, EMAIL_MIN_GAP="0")  # the guide's takers get it at once
    send_guide(app, outbox, "ann@example.com")
    send_guide(app, outbox, "bea@example.com")
    add_subscribers(app, 6)
    with app.app_context():
        ctx = for_app(app)
        broadcast = broadcasts.create(ctx, NEWS, Audience(), "test")
        broadcasts.start(ctx, broadcast.id)
        broadcast_id = broadcast.id
    deliver_ids(app, hand_out(app))
    client = app.test_client()
    paths = paths_by_address(outbox)
    start = utcnow() + timedelta(minutes=5)
    script = [
        (0, "ann@example.com", BLOG, "GET"),
        (0, "p0@example.com", A, "GET"),
        (30, "p0@example.com", A, "GET"),
        (60, "p0@example.com", B, "GET"),
        (100, "p1@example.com", A, "GET"),
        (100.5, "p1@example.com", B, "GET"),
        (101, "p1@example.com", C, "GET"),
        (200, "p2@example.com", A, "HEAD"),
        (400, "p2@example.com", B, "GET"),
        (500, "p3@example.com", A, "GET"),
        (501, "p3@example.com", B, "GET"),
        (501.5, "p3@example.com", C, "GET"),
    ]
    for seconds, address, url, method in script:
        with time_machine.travel(start + timedelta(seconds=seconds), tick=False):
            assert client.open(paths[address][url], method=method).status_code == 302
    later = start + timedelta(hours=1)
    with app.app_context(), time_machine.travel(later, tick=False):
        ctx = for_app(app)
        unsubscribe(ctx, subscriber("p4@example.com").id, META)
        event = Event("postmark", "c-1", EventKind.COMPLAINT, "p5@example.com", later, None)
        assert apply(ctx, [event]) == 1
    return app, broadcast_id


def subscriber(address: str) -> Subscriber:
    return db.session.scalars(select(Subscriber).where(Subscriber.email == address)).one()


def test_a_broadcasts_kept_figures_count_people_once_and_bursts_apart(mixed):
    app, broadcast_id = mixed
    with app.app_context():
        found = figures(broadcast_id)
        assert found.delivered == 8
        assert found.clicks == ClickFigures(
            people=2,  # p0, p2 (p3's one human hit was re-marked a burst)
            automated_people=2,  # p1, p3
            automated_hits={"burst": 6, "head": 1},
            top_links=(LinkFigure(B, 2), LinkFigure(A, 1)),
        )
        assert found.click_rate == 25.0
        assert (found.unsubscribed_after, found.complained_after) == (1, 1)
        now = for_app(app).now()
        live = progress(broadcast_id, now)
        assert live is not None
        assert (live.recipients, live.sent, live.remaining) == (8, 8, 0)
        sent_at = db.session.scalar(select(func.min(ScheduledEmail.sent_at)))
        began = sent_at.replace(second=0, microsecond=0)  # its first minute: the rate's start
        at = began + timedelta(seconds=40)
        assert progress(broadcast_id, at).rate == pytest.approx(8 / 40)
        assert progress(broadcast_id, at + timedelta(minutes=3)).rate == 0
        assert clicks.per_step()["guide"].people == 1
        assert f"broadcast-{broadcast_id}" not in clicks.per_step(1)  # not a magnet's


def test_kept_figures_equal_a_recount_through_folds_erasure_and_the_purge(mixed):
    app, broadcast_id = mixed
    with app.app_context():
        before = kept()
        assert before[(-broadcast_id, "c_people", f"broadcast-{broadcast_id}")] == 2
        assert recounted() == before
        assert rollup.fold(utcnow()) > 0
        assert kept() == before

        ctx = for_app(app)
        for address in ("p0@example.com", "p3@example.com", "p4@example.com"):
            forget(ctx, subscriber(address))
        after = kept()
        assert after == recounted()
        rollup.fold(utcnow())
        assert kept() == after
        assert not db.session.scalar(text("SELECT count(*) FROM figure_total WHERE n = 0"))
        assert not db.session.scalar(  # p0 alone clicked A: its link's row is gone
            text("SELECT count(*) FROM figure_total WHERE part LIKE :a"), {"a": f"%|{A}"}
        )
        found = figures(broadcast_id)
        assert (found.delivered, found.unsubscribed_after) == (5, 0)
        assert found.clicks == ClickFigures(
            people=1,
            automated_people=1,
            automated_hits={"burst": 3, "head": 1},
            top_links=(LinkFigure(B, 1),),
        )

        with time_machine.travel(utcnow() + timedelta(days=14 * 31), tick=False):
            assert purge_old_clicks(for_app(app)) > 0
        db.session.commit()
        gone = kept()
        assert gone == recounted()
        assert not [key for key in gone if key[1].startswith("c_")]
        assert figures(broadcast_id).clicks == ClickFigures()


def test_a_row_recorded_sent_after_its_recipient_left_counts_as_the_recount(app):
    """Accepted by the server before the withdrawal, recorded after it: the unsubscribe
    counts after this broadcast, as the rows say."""
    ids = add_subscribers(app, 2)
    with app.app_context():
        ctx = for_app(app)
        broadcast = broadcasts.create(ctx, NEWS, Audience(), "test")
        broadcasts.start(ctx, broadcast.id)
        accepted = ctx.now()
        with time_machine.travel(accepted + timedelta(minutes=1), tick=False):
            unsubscribe(ctx, ids[0], META)
        row = db.session.scalars(
            select(ScheduledEmail).where(ScheduledEmail.subscriber_id == ids[0])
        ).one()
        row.status, row.sent_at = "sent", accepted
        db.session.commit()
        assert figures(broadcast.id).unsubscribed_after == 1
        assert kept() == recounted()
        row.sent_at = accepted + timedelta(minutes=2)  # after it: no longer counted
        db.session.commit()
        assert figures(broadcast.id).unsubscribed_after == 0
        assert kept() == recounted()

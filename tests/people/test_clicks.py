"""What we hold on clicks: the burst rule, the 13-month purge, a person's timeline."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from service.core.clock import utcnow
from service.core.extensions import db
from service.core.models import Click
from service.people import housekeeping
from service.people.bursts import Hit, in_bursts
from service.people.housekeeping import months_before, purge_old_clicks
from service.people.timeline import timeline
from service.sending.context import for_app
from tests.click_helpers import BLOG, SHOP, VIDEO, linking_app, send_guide, tracked_paths

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def hit(number: int, url: str, seconds: float) -> Hit:
    return Hit(number, url, T0 + timedelta(seconds=seconds))


@pytest.mark.parametrize(
    ("hits", "burst"),
    [
        ([hit(1, "a", 0), hit(2, "b", 1), hit(3, "c", 2)], {1, 2, 3}),  # 2 s: within
        ([hit(1, "a", 0), hit(2, "b", 1), hit(3, "c", 2.001)], set()),
        ([hit(1, "a", 0), hit(2, "a", 0.1), hit(3, "b", 0.2), hit(4, "b", 0.3)], set()),
        # The burst takes the earlier hits it completes, and only the hits inside it.
        (
            [hit(1, "a", 0), hit(2, "b", 5), hit(3, "c", 5.5), hit(4, "a", 6), hit(5, "b", 60)],
            {2, 3, 4},
        ),
        ([hit(1, "a", 0), hit(2, "b", 1.5), hit(3, "c", 3), hit(4, "d", 3.4)], {2, 3, 4}),
        ([], set()),
    ],
)
def test_three_distinct_links_within_two_seconds(hits, burst):
    assert in_bursts(hits) == burst


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2027, 6, 15, 9, 30, tzinfo=UTC), datetime(2026, 5, 15, 9, 30, tzinfo=UTC)),
        (datetime(2027, 1, 31, tzinfo=UTC), datetime(2025, 12, 31, tzinfo=UTC)),
        (datetime(2027, 3, 31, tzinfo=UTC), datetime(2026, 2, 28, tzinfo=UTC)),
        (datetime(2029, 3, 31, tzinfo=UTC), datetime(2028, 2, 29, tzinfo=UTC)),
    ],
)
def test_thirteen_calendar_months_back(moment, expected):
    assert months_before(moment, 13) == expected


def test_clicks_older_than_thirteen_months_are_deleted(env, tmp_path, outbox):
    app = linking_app(env, tmp_path)
    _text, html = send_guide(app, outbox)
    paths = tracked_paths(html)
    client = app.test_client()
    start = utcnow()
    for days, url in [(0, BLOG), (40, SHOP), (400, VIDEO)]:
        with time_machine.travel(start + timedelta(days=days), tick=False):
            assert client.get(paths[url]).status_code == 302

    def kept() -> list[str]:
        return list(db.session.scalars(select(Click.url).order_by(Click.id)))

    with app.app_context():
        # Thirteen months are 393 days at the least, 397 at the most.
        with time_machine.travel(start + timedelta(days=392), tick=False):
            assert purge_old_clicks(for_app(app)) == 0
        with time_machine.travel(start + timedelta(days=398), tick=False):
            assert housekeeping.run(for_app(app)) == 1  # the task beat runs hourly
            assert kept() == [SHOP, "https://video.example.com/watch/42"]
        with time_machine.travel(start + timedelta(days=800), tick=False):
            assert purge_old_clicks(for_app(app)) == 2
            assert db.session.scalar(select(func.count(Click.id))) == 0


def test_a_persons_record_and_timeline_show_their_clicks(env, tmp_path, outbox):
    app = linking_app(env, tmp_path)
    _text, html = send_guide(app, outbox)
    paths = tracked_paths(html)
    client = app.test_client()
    client.head(paths[SHOP])
    with time_machine.travel(utcnow() + timedelta(minutes=3), tick=False):
        client.get(paths[BLOG])
    result = app.test_cli_runner().invoke(args=["subscribers", "show", "ann@example.com"])
    held = json.loads(result.output)
    assert [(c["step"], c["url"], c["automated"]) for c in held["clicks"]] == [
        ("guide", SHOP, "head"),
        ("guide", BLOG, None),
    ]
    titles = [entry.title for entry in timeline(held) if entry.kind == "click"]
    assert titles == [
        "A link in “guide” opened by a machine (head)",
        "Clicked a link in “guide”",
    ]

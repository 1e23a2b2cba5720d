"""Click figures from real clicks: people once each, automated hits apart with their reasons,
the top links; per step, and for any set of emails (what a broadcast's page will ask)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from service.core.clock import utcnow
from service.core.extensions import db
from service.core.models import Click, ScheduledEmail, Subscriber
from service.insights.clicks import ClickFigures, LinkFigure, per_step
from service.people.records import forget
from service.sending.context import for_app
from tests.click_helpers import BLOG, SHOP, VIDEO, linking_app, send_guide, tracked_paths

VIDEO_STORED = "https://video.example.com/watch/42"


@pytest.fixture
def clicked(env, tmp_path, outbox):
    """ann clicks two links (one twice), bob's scanner bursts through three, cat's client
    checks a link with HEAD before cat clicks another, dan clicks nothing."""
    app = linking_app(env, tmp_path)
    client = app.test_client()
    paths = {
        name: tracked_paths(send_guide(app, outbox, f"{name}@example.com")[1])
        for name in ("ann", "bob", "cat", "dan")
    }
    start = utcnow()
    script = [
        (0, "ann", BLOG, "GET"),
        (60, "ann", SHOP, "GET"),
        (120, "ann", BLOG, "GET"),
        (200, "bob", BLOG, "GET"),
        (200.5, "bob", SHOP, "GET"),
        (201, "bob", VIDEO, "GET"),
        (300, "cat", SHOP, "HEAD"),
        (900, "cat", VIDEO, "GET"),
    ]
    for seconds, name, url, method in script:
        with time_machine.travel(start + timedelta(seconds=seconds), tick=False):
            answer = client.open(paths[name][url], method=method)
            assert answer.status_code == 302
    return app


def test_per_step_counts_people_once_and_keeps_automated_hits_apart(clicked):
    with clicked.app_context():
        assert per_step() == {
            "guide": ClickFigures(
                people=2,
                automated_people=1,
                automated_hits={"burst": 3, "head": 1},
                top_links=(
                    LinkFigure(BLOG, 1),
                    LinkFigure(SHOP, 1),
                    LinkFigure(VIDEO_STORED, 1),
                ),
            )
        }
        assert per_step()["guide"].rate(4) == 50.0
        assert ClickFigures().rate(0) is None


def test_a_magnets_figures_are_its_emails_and_erasure_takes_a_person_back(clicked):
    with clicked.app_context():
        magnet = db.session.scalar(select(ScheduledEmail.magnet_id).limit(1))
        assert per_step(magnet) == per_step()
        assert per_step(magnet + 1000) == {}
        ann = db.session.scalar(select(Subscriber).filter_by(email="ann@example.com"))
        forget(for_app(clicked), ann)
        found = per_step(magnet)["guide"]
        assert (found.people, found.automated_people) == (1, 1)
        assert found.top_links == (LinkFigure(VIDEO_STORED, 1),)
        assert per_step() == per_step(magnet)


def test_steps_apart_and_the_top_five_links_by_people(clicked):
    with clicked.app_context():
        email = db.session.scalars(select(ScheduledEmail).filter_by(status="sent")).first()
        assert email is not None
        now = utcnow()
        for n in range(7):  # one person on seven links of another step
            db.session.add(
                Click(
                    email_id=email.id,
                    subscriber_id=email.subscriber_id,
                    step_id="knees-over-toes",
                    url=f"https://a.example/{n}",
                    at=now + timedelta(minutes=n),
                )
            )
        db.session.commit()
        figures = per_step()
        assert figures["guide"].people == 2  # unchanged by the other step's clicks
        other = figures["knees-over-toes"]
        assert other.people == 1 and other.automated_people == 0
        assert [link.url for link in other.top_links] == [
            f"https://a.example/{n}" for n in range(5)
        ]

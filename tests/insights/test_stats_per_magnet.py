"""The dashboard's figures of one magnet: its signups, its funnel and its steps; all magnets
by default. The page's select lists the magnets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine
from sqlalchemy import select

from service.core.extensions import db
from service.core.models import Subscriber
from service.insights import stats
from service.people.consent import RequestMeta
from service.people.unsubscribe import leave_magnet
from service.sending.context import for_app
from tests.helpers import api_signup, dispatch_inline
from tests.insights.test_stats import kept, recomputed
from tests.magnets import KNEE, KNEE_TITLE, add_magnet, default_id, magnet_context
from tests.web.test_admin_pages import signed_in

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
META = RequestMeta("unsubscribe-link", None, None, None)


def story(app, client) -> tuple[int, int]:
    """ann takes both magnets, bo the knee checklist (on the 3rd), cy the default; two
    days on, every follow-up has gone; ann stops the knee checklist only."""
    knee, default = add_magnet(app), default_id(app)
    with time_machine.travel(T0, tick=False):
        api_signup(client, "ann@example.com", magnet=KNEE)
        api_signup(client, "ann@example.com")
        api_signup(client, "cy@example.com")
        dispatch_inline(app)
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        api_signup(client, "bo@example.com", magnet=KNEE)
        dispatch_inline(app)
    for hours in range(48, 80, 2):
        with time_machine.travel(T0 + timedelta(hours=hours), tick=False):
            dispatch_inline(app)
    with app.app_context(), app.test_request_context():
        ann = db.session.scalar(select(Subscriber.id).where(Subscriber.email == "ann@example.com"))
        leave_magnet(for_app(app), ann, knee, META)
    return knee, default


def test_signups_funnel_and_steps_of_one_magnet(app, client):
    knee, default = story(app, client)
    now = T0 + timedelta(days=4)
    with app.app_context():
        knee_days = stats.signups_per_day(now, days=5, magnet_id=knee)
        assert [d.count for d in knee_days] == [1, 1, 0, 0, 0]
        assert [d.count for d in stats.signups_per_day(now, days=5)] == [2, 1, 0, 0, 0]
        assert [d.count for d in stats.signups_per_day(now, days=5, magnet_id=default)] == [
            2,
            0,
            0,
            0,
            0,
        ]

        knee_sequence = magnet_context(app, knee).content
        funnel = {s.label: s.count for s in stats.funnel(knee_sequence, False, knee)}
        assert funnel["Signed up"] == 2 and funnel["Guide sent"] == 2
        everyone = {s.label: s.count for s in stats.funnel(for_app(app).content, False)}
        assert everyone["Signed up"] == 3

        steps = {f.step_id: f for f in stats.step_figures(knee_sequence, knee)}
        first, second = knee_sequence.steps[0].id, knee_sequence.steps[1].id
        assert steps[first].sent == 2
        assert steps[second].sent == 2  # ann's and bo's follow-ups
        assert steps[second].unsubscribed == 1  # ann stopped it after that one
        default_steps = {f.step_id: f for f in stats.step_figures(for_app(app).content, default)}
        assert default_steps[first].sent == 2  # ann's and cy's guides
        assert default_steps[second].unsubscribed == 0, "stopping the knee one is not leaving"
        held = kept()
        assert held[(knee, "unsub", second)] == 1 and held[(knee, "people", "signed_up")] == 2
        assert recomputed() == held  # what the triggers kept, per magnet too


def test_the_dashboard_filters_by_the_chosen_magnet(app, client):
    story(app, client)
    body = signed_in(app, client, "/admin/")
    assert '<option value="" selected>All magnets</option>' in body
    assert f'<option value="{KNEE}">{KNEE_TITLE}</option>' in body
    knee_page = client.get(f"/admin/?magnet={KNEE}").get_data(as_text=True)
    assert f'<option value="{KNEE}" selected>{KNEE_TITLE}</option>' in knee_page
    assert "no longer in the file" not in body


def test_clicks_per_step_of_one_magnet(app, client):
    from service.core.models import Click, ScheduledEmail
    from service.insights import clicks

    knee, default = story(app, client)
    with app.app_context():
        guides = db.session.scalars(
            select(ScheduledEmail).where(ScheduledEmail.step_id == "guide")
        ).all()
        for email in guides:  # one click on each guide: 2 knee ones, 2 default ones
            db.session.add(
                Click(
                    email_id=email.id,
                    subscriber_id=email.subscriber_id,
                    step_id="guide",
                    magnet_id=email.magnet_id,
                    url="https://example.org/",
                    at=T0 + timedelta(hours=1),
                )
            )
        db.session.commit()
        assert clicks.per_step()["guide"].people == 3  # ann, bo, cy
        assert clicks.per_step(knee)["guide"].people == 2  # ann, bo
        assert clicks.per_step(default)["guide"].people == 2  # ann, cy

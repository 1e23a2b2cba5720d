"""Two magnets whose sequences share step ids ("guide", "knees-over-toes"): a person's clicks
count once per (magnet, step) under each magnet, once per step under everyone's, against a
recount of the click rows, through human hits, a scanner's, re-marking and deletes."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select, update

from service.core.extensions import db
from service.core.models import Click, ScheduledEmail
from service.insights import clicks
from tests.insights.figure_story import T0, person, story
from tests.insights.test_kept_figures import kept, recounted

URL = "https://example.org/"


def hit(email: ScheduledEmail, minutes: int, automated: str | None = None) -> None:
    db.session.add(
        Click(
            email_id=email.id,
            subscriber_id=email.subscriber_id,
            step_id=email.step_id,
            magnet_id=email.magnet_id,
            url=URL,
            at=T0 + timedelta(hours=3, minutes=minutes),
            automated=automated,
        )
    )
    db.session.commit()


def guides(address: str) -> dict[int, ScheduledEmail]:
    rows = db.session.scalars(
        select(ScheduledEmail).where(
            ScheduledEmail.subscriber_id == person(address), ScheduledEmail.step_id == "guide"
        )
    )
    return {row.magnet_id: row for row in rows}


def test_clicks_on_two_magnets_guides_count_per_magnet_and_once_overall(app):
    knee, default = story(app)
    with app.app_context():
        ann, cy = guides("ann@example.com"), guides("cy@example.com")
        hit(ann[knee], 0)
        hit(ann[default], 1)
        hit(ann[default], 2)  # again: still one person
        hit(cy[default], 3, automated="head")
        assert kept() == recounted()
        assert clicks.per_step()["guide"].people == 1  # ann, once
        assert clicks.per_step(knee)["guide"].people == 1
        assert clicks.per_step(default)["guide"].people == 1
        assert clicks.per_step(default)["guide"].automated_people == 1  # cy

        # ann's hits on the default guide turn out a scanner's: her knee one still counts.
        db.session.execute(
            update(Click).where(Click.email_id == ann[default].id).values(automated="burst")
        )
        db.session.commit()
        assert kept() == recounted()
        assert clicks.per_step()["guide"].people == 1
        assert clicks.per_step(knee)["guide"].people == 1
        assert clicks.per_step(default)["guide"].people == 0
        assert clicks.per_step(default)["guide"].automated_people == 2

        db.session.execute(delete(Click).where(Click.email_id == ann[knee].id))
        db.session.commit()
        assert kept() == recounted()
        assert "guide" not in clicks.per_step(knee)
        assert clicks.per_step()["guide"].people == 0

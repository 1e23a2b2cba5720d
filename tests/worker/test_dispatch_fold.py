"""The beat's pass folds the dashboard's figure deltas into their totals, changing no figure."""

from __future__ import annotations

from sqlalchemy import text

from service.core.broker import DISPATCH
from service.core.extensions import db
from tests.helpers import api_signup
from tests.insights.test_stats import kept
from worker.app import bind


def test_the_dispatch_task_folds_the_figures(app, client):
    assert api_signup(client, "fold@example.com").status_code == 202
    with app.app_context():
        before = kept()
        assert db.session.scalar(text("SELECT count(*) FROM figure_delta")) > 0
    celery = bind(app)
    celery.conf.task_always_eager = True  # the pass hands its rows to tasks run in place
    celery.tasks[DISPATCH].apply().get()
    with app.app_context():
        assert db.session.scalar(text("SELECT count(*) FROM figure_delta")) == 0
        assert kept() == before

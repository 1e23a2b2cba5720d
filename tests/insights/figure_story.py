"""A story for the figures of bounces, complaints and downloads (tests/insights): two magnets
sharing step ids, complaints that name an older email or none, one guide downloaded of two."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import time_machine
from flask import Flask
from sqlalchemy import select, text

from service.core.extensions import db
from service.core.models import EventKind, ScheduledEmail, Subscriber
from service.insights import rollup_sql
from service.people.downloads import record_download
from service.sending.context import for_app
from service.webhooks.events import apply
from service.webhooks.normalized import Event
from tests.helpers import api_signup, dispatch_inline
from tests.magnets import KNEE, add_magnet, default_id, magnet_context

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
LATER = T0 + timedelta(days=4)
Key = tuple[int, str, str]


class Magnets(NamedTuple):
    knee: int
    default: int


def kept() -> dict[Key, int]:
    """The dashboard's figures (rollup_sql's, not the click and broadcast ones): totals
    plus unfolded deltas, zeros left out."""
    rows = db.session.execute(
        text(
            "SELECT magnet_id, name, part, SUM(n) FROM (SELECT magnet_id, name, part, n "
            "FROM figure_total UNION ALL SELECT magnet_id, name, part, n FROM figure_delta) f "
            "WHERE name NOT LIKE 'c\\_%' ESCAPE '\\' AND name NOT LIKE 'b\\_%' ESCAPE '\\' "
            "GROUP BY magnet_id, name, part"
        )
    ).all()
    return {(m, name, part): n for m, name, part, n in rows if n}


def recounted(backfill=rollup_sql.backfill) -> dict[Key, int]:
    """The same figures counted afresh from the rows; the kept rows stay as they were."""
    backfill(db.session.connection())
    found = kept()
    db.session.rollback()
    return found


def person(address: str) -> int:
    return db.session.scalars(select(Subscriber.id).where(Subscriber.email == address)).one()


def message_id(address: str, magnet_id: int, step_id: str) -> str:
    found = db.session.scalars(
        select(ScheduledEmail.message_id)
        .join(Subscriber)
        .where(Subscriber.email == address, ScheduledEmail.magnet_id == magnet_id)
        .where(ScheduledEmail.step_id == step_id, ScheduledEmail.status == "sent")
    ).one()
    assert found
    return found


def report(app: Flask, event_id: str, kind: str, address: str, named: str | None) -> None:
    with app.app_context(), time_machine.travel(LATER, tick=False):
        event = Event("ses", event_id, kind, address, LATER, None, message_id=named)
        assert apply(for_app(app), [event]) == 1


def story(app: Flask) -> Magnets:
    """ann takes both magnets (their steps share ids), bob and cy the default; every second
    step has gone. ann downloads the knee checklist, bob the default guide. ann complains
    about her default guide (an older email than her last), bob about an email his
    provider does not name."""
    client = app.test_client()
    magnets = Magnets(add_magnet(app), default_id(app))
    with time_machine.travel(T0, tick=False):
        for address, magnet in (("ann", KNEE), ("ann", None), ("bob", None), ("cy", None)):
            assert api_signup(client, f"{address}@example.com", magnet=magnet).status_code == 202
    for hours in range(0, 80, 2):
        with time_machine.travel(T0 + timedelta(hours=hours), tick=False):
            dispatch_inline(app)
    with app.app_context(), time_machine.travel(T0 + timedelta(hours=81), tick=False):
        assert record_download(magnet_context(app, magnets.knee), person("ann@example.com"))
        assert record_download(magnet_context(app, magnets.default), person("bob@example.com"))
        guide = message_id("ann@example.com", magnets.default, "guide")
    report(app, "c-ann", EventKind.COMPLAINT, "ann@example.com", guide)
    report(app, "c-bob", EventKind.COMPLAINT, "bob@example.com", None)
    return magnets

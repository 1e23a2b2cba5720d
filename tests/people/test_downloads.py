"""Guide downloads per magnet: with two magnets, a person who downloads guide A has not
downloaded guide B; the person's own counts still take every guide."""

from __future__ import annotations

import re

from flask import Flask
from sqlalchemy import select

from service.core import tokens
from service.core.extensions import db
from service.core.models import Subscriber
from service.core.settings import settings_of
from service.people.downloads import downloads_per_magnet
from service.people.enrolments import magnets_of
from service.people.records import describe
from service.sending.compose import magnet_guide_url
from service.sending.context import for_app
from tests.conftest import PUBLIC_URL
from tests.helpers import api_signup, sign_in_owner
from tests.magnets import KNEE, add_magnet, default_id


def person(app: Flask, email: str) -> Subscriber:
    return db.session.scalars(select(Subscriber).where(Subscriber.email == email)).one()


def guide_links(app: Flask, email: str, knee: int) -> tuple[str, str]:
    """The person's link to the default guide and to the knee checklist's, as emails have them."""
    with app.app_context():
        settings, subscriber = settings_of(app), person(app, email)
        default = "/guide/" + tokens.make_token(settings.secret_keys, tokens.GUIDE, subscriber)
        other = magnet_guide_url(settings, subscriber, knee).removeprefix(PUBLIC_URL)
        return default, other


def test_a_download_of_one_guide_is_not_one_of_the_other(app: Flask, client):
    knee, default = add_magnet(app), default_id(app)
    for magnet in (KNEE, None):
        assert api_signup(client, "ann@example.com", magnet=magnet).status_code == 202
    assert api_signup(client, "bob@example.com").status_code == 202
    _ann_default, ann_knee = guide_links(app, "ann@example.com", knee)
    bob_default, _bob_knee = guide_links(app, "bob@example.com", knee)
    for link in (ann_knee, ann_knee, bob_default):
        client.get(link)  # counted before it is served (the knee fixture has no PDF: 404)
    with app.app_context():
        assert downloads_per_magnet() == {knee: (2, 1), default: (1, 1)}
        ann = person(app, "ann@example.com")
        assert ann.guide_downloads == 2  # the person's count: any guide
        counts = {m.id: e.guide_downloads for m, e in magnets_of(ann)}
        assert counts == {knee: 2, default: 0}
        shown = {m["slug"]: m["guide_downloads"] for m in describe(for_app(app), ann)["magnets"]}
        assert shown[KNEE] == 2 and sum(shown.values()) == 2
    sign_in_owner(app, client)
    page = client.get("/admin/magnets").get_data(as_text=True)
    # The magnets page: signups and guide downloads per row, the default magnet first.
    rows = re.findall(r'<td class="num">(\d+)</td>\s*<td class="num">(\d+)</td>', page)
    assert rows == [("2", "1"), ("1", "2")]

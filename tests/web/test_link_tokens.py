"""Link tokens name one subscriber row for good: a token made for anyone else answers 404."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer
from sqlalchemy import func, select

from service import runtime, tokens
from service.extensions import db
from service.models import ConsentRecord, Subscriber
from tests.conftest import make_app
from tests.helpers import api_signup, dispatch_inline, outbox_messages, parts

ONE_CLICK = {"List-Unsubscribe": "One-Click"}
GUIDE_LINK = re.compile(r"https://news\.example\.org(/guide/\S+)")
CONFIRM_LINK = re.compile(r"https://news\.example\.org(/confirm/\S+)")
ADDRESS = "bob.smith@example.com"
OTHER_KEY = "x0cpyYkAN9mMEZVlwSRG5A"  # the shape of a token_key, another row's


def latest_links(outbox: Path) -> tuple[str, str]:
    """The unsubscribe and guide paths of the newest email in the outbox."""
    msg = outbox_messages(outbox)[-1]
    guide = GUIDE_LINK.search(parts(msg)[0])
    assert guide, "the guide email links to the guide"
    return urlsplit(msg["List-Unsubscribe"].strip("<>")).path, guide.group(1)


def subscriber(app: Flask, address: str) -> Subscriber:
    with app.app_context():
        found = db.session.scalar(select(Subscriber).where(Subscriber.email == address))
        assert found is not None
        db.session.expunge(found)
        return found


def withdrawals(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).where(ConsentRecord.action == "withdrawal"))


def signed(app: Flask, purpose: str, payload: object, timed: bool = False) -> str:
    """A token with a genuine signature over any payload (what the key's holder could make)."""
    keys = list(reversed(runtime.settings(app).secret_keys))
    serializer = URLSafeTimedSerializer if timed else URLSafeSerializer
    return serializer(keys, salt=purpose).dumps(payload)


def test_a_forgotten_persons_link_opens_nothing_for_the_next_newcomer(
    app: Flask, client: FlaskClient, outbox: Path
):
    api_signup(client, "ann@example.com")
    dispatch_inline(app)
    unsubscribe, guide = latest_links(outbox)
    ann_id = subscriber(app, "ann@example.com").id
    forgot = app.test_cli_runner().invoke(args=["subscribers", "forget", "ann@example.com"])
    assert forgot.exit_code == 0, forgot.output
    api_signup(client, ADDRESS)
    dispatch_inline(app)
    for answer in (
        client.get(unsubscribe),
        client.post(unsubscribe, data=ONE_CLICK),
        client.get(guide),
    ):
        assert answer.status_code == 404
    assert subscriber(app, ADDRESS).status == "active"
    assert withdrawals(app) == 0
    # SQLite handed the erased id to the next row before AUTOINCREMENT.
    assert subscriber(app, ADDRESS).id != ann_id


def test_a_genuine_signature_opens_only_the_row_it_was_made_for(
    app: Flask, client: FlaskClient, outbox: Path
):
    api_signup(client, ADDRESS)
    dispatch_inline(app)
    bob = subscriber(app, ADDRESS)
    made_elsewhere = {
        "id only": bob.id,  # the shape of links from before migration 0006
        "another row's key": [bob.id, OTHER_KEY],
    }
    for kind, payload in made_elsewhere.items():
        leave = signed(app, tokens.UNSUBSCRIBE, payload)
        assert client.get(f"/unsubscribe/{leave}").status_code == 404, kind
        assert client.post(f"/unsubscribe/{leave}", data=ONE_CLICK).status_code == 404, kind
        assert client.get(f"/guide/{signed(app, tokens.GUIDE, payload)}").status_code == 404, kind
    assert subscriber(app, ADDRESS).status == "active"
    assert subscriber(app, ADDRESS).guide_downloads == 0
    unsubscribe, guide = latest_links(outbox)
    assert client.get(guide).status_code == 200
    assert client.post(unsubscribe, data=ONE_CLICK).status_code == 200


def test_a_confirmation_link_binds_the_same_way(env: dict[str, str], outbox: Path):
    app = make_app({**env, "DOUBLE_OPT_IN": "true"})
    client = app.test_client()
    api_signup(client, ADDRESS)
    dispatch_inline(app)
    bob = subscriber(app, ADDRESS)
    for payload in (bob.id, [bob.id, OTHER_KEY]):
        token = signed(app, tokens.CONFIRM, payload, timed=True)
        assert client.get(f"/confirm/{token}").status_code == 404
    assert subscriber(app, ADDRESS).status == "pending"
    [msg] = outbox_messages(outbox)
    link = CONFIRM_LINK.search(parts(msg)[0])
    assert link and client.get(link.group(1)).status_code == 200

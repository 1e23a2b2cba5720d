"""The click redirect /r/<token>: 302 to the signed link and the hit recorded; people counted
once per link; HEAD, prefetch and bursts kept apart; anything not genuine 404, never an
open redirect."""

from __future__ import annotations

import string
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select, text

from service import create_app
from service.core import click_tokens
from service.core.clock import utcnow
from service.core.extensions import db
from service.core.models import Click, ScheduledEmail
from service.insights.clicks import per_step
from service.people import records
from service.sending.context import for_app
from tests.click_helpers import BLOG, OUR_PAGE, SHOP, VIDEO, linking_app, send_guide, tracked_paths
from tests.conftest import SECRET

OTHER_KEY = "another-key-8fJ2kL5qW9xZ3vB7nM1pR4tY6u"


@dataclass(frozen=True)
class Sent:
    """One guide email with links: the click-redirect path of each link, by its URL."""

    paths: dict[str, str]
    email_id: int
    message_id: str

    def token(self, url: str) -> str:
        return self.paths[url].removeprefix("/r/")


@pytest.fixture
def clicks_app(env: dict[str, str], tmp_path: Path) -> Iterator[Flask]:
    app = linking_app(env, tmp_path)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def send(app: Flask, outbox: Path, address: str = "ann@example.com") -> Sent:
    _text, html = send_guide(app, outbox, address)
    with app.app_context():
        email = db.session.scalars(
            select(ScheduledEmail)
            .where(ScheduledEmail.status == "sent")
            .order_by(ScheduledEmail.id.desc())
        ).first()
        assert email is not None
        return Sent(tracked_paths(html), email.id, email.message_id)


@pytest.fixture
def sent(clicks_app: Flask, outbox: Path) -> Sent:
    return send(clicks_app, outbox)


@pytest.fixture
def client(clicks_app: Flask) -> FlaskClient:
    return clicks_app.test_client()


def hits(app: Flask) -> list[tuple[str, str | None]]:
    with app.app_context():
        return [
            (url, automated)
            for url, automated in db.session.execute(
                select(Click.url, Click.automated).order_by(Click.id)
            )
        ]


def figures(app: Flask):
    with app.app_context():
        return per_step().get("guide")


def at(moment: datetime):
    return time_machine.travel(moment, tick=False)


# --- a person's click ------------------------------------------------------------------------


def test_a_click_answers_302_to_the_link_and_is_recorded(clicks_app, client, sent):
    answer = client.get(sent.paths[BLOG])
    assert answer.status_code == 302
    assert answer.headers["Location"] == BLOG
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    with clicks_app.app_context():
        [click] = db.session.scalars(select(Click))
        assert (click.email_id, click.step_id, click.url) == (sent.email_id, "guide", BLOG)
        assert click.automated is None
        assert (
            click.subscriber_id == db.session.get_one(ScheduledEmail, sent.email_id).subscriber_id
        )


def test_the_link_is_stored_normalized_and_the_redirect_keeps_its_fragment(
    clicks_app, client, sent
):
    answer = client.get(sent.paths[VIDEO])
    assert answer.headers["Location"] == "https://video.example.com/watch/42#start"
    assert hits(clicks_app) == [("https://video.example.com/watch/42", None)]


def test_counted_once_per_person_and_link(clicks_app, client, sent, outbox):
    start = utcnow()
    for minutes, url in enumerate([BLOG, BLOG, SHOP, BLOG, SHOP]):
        with at(start + timedelta(minutes=minutes)):
            assert client.get(sent.paths[url]).status_code == 302
    other = send(clicks_app, outbox, "bob@example.com")
    with at(start + timedelta(minutes=10)):
        client.get(other.paths[BLOG])
    found = figures(clicks_app)
    assert found.people == 2 and found.automated_people == 0
    assert [(link.url, link.people) for link in found.top_links] == [(BLOG, 2), (SHOP, 1)]
    assert len(hits(clicks_app)) == 6  # every hit is kept; the figures count people


def test_our_own_page_is_counted_like_any_link(clicks_app, client, sent):
    assert client.get(sent.paths[OUR_PAGE]).headers["Location"] == OUR_PAGE
    assert figures(clicks_app).people == 1


# --- what scanners do ------------------------------------------------------------------------


def test_a_head_request_redirects_but_is_kept_apart(clicks_app, client, sent):
    answer = client.head(sent.paths[BLOG])
    assert answer.status_code == 302 and answer.headers["Location"] == BLOG
    assert hits(clicks_app) == [(BLOG, "head")]
    found = figures(clicks_app)
    assert found.people == 0 and found.automated_people == 1
    assert found.automated_hits == {"head": 1}
    assert found.top_links == ()


@pytest.mark.parametrize(
    "header",
    [
        {"Sec-Purpose": "prefetch"},
        {"Sec-Purpose": "prefetch;prerender"},
        {"Purpose": "prefetch"},
        {"X-Moz": "prefetch"},
    ],
)
def test_a_prefetch_redirects_but_is_kept_apart(clicks_app, client, sent, header):
    answer = client.get(sent.paths[SHOP], headers=header)
    assert answer.status_code == 302 and answer.headers["Location"] == SHOP
    assert hits(clicks_app) == [(SHOP, "prefetch")]
    assert figures(clicks_app).people == 0


def test_three_links_within_two_seconds_are_a_burst(clicks_app, client, sent):
    start = utcnow()
    for seconds, url in [(0, BLOG), (0.7, SHOP), (2.0, VIDEO)]:
        with at(start + timedelta(seconds=seconds)):
            assert (
                client.get(sent.paths[url], headers={"User-Agent": "Mozilla/5.0"}).status_code
                == 302
            )
    assert [automated for _url, automated in hits(clicks_app)] == ["burst"] * 3
    found = figures(clicks_app)
    assert found.people == 0 and found.automated_people == 1
    assert found.automated_hits == {"burst": 3}
    # The person who reads the email later is counted: the scanner's burst is not theirs.
    with at(start + timedelta(minutes=5)):
        client.get(sent.paths[SHOP])
    found = figures(clicks_app)
    assert found.people == 1 and found.automated_people == 0
    assert [(link.url, link.people) for link in found.top_links] == [(SHOP, 1)]


def test_a_burst_keeps_the_reason_a_head_or_prefetch_had(clicks_app, client, sent):
    start = utcnow()
    with at(start):
        client.head(sent.paths[BLOG])
    with at(start + timedelta(seconds=1)):
        client.get(sent.paths[SHOP])
    with at(start + timedelta(seconds=1.5)):
        client.get(sent.paths[VIDEO])
    assert [automated for _url, automated in hits(clicks_app)] == ["head", "burst", "burst"]


@pytest.mark.parametrize(
    "pattern",
    [
        [(0, BLOG), (1.5, SHOP), (3.6, VIDEO)],  # three links, never three within 2 seconds
        [(0, BLOG), (0.5, BLOG), (1, SHOP), (1.5, SHOP)],  # fast, but two links only
    ],
    ids=["spread-out", "two-links"],
)
def test_clicks_that_are_no_burst_count_as_people(clicks_app, client, sent, pattern):
    start = utcnow()
    for seconds, url in pattern:
        with at(start + timedelta(seconds=seconds)):
            client.get(sent.paths[url])
    assert all(automated is None for _url, automated in hits(clicks_app))
    assert figures(clicks_app).people == 1


def test_a_burst_across_two_emails_is_no_burst(clicks_app, client, sent, outbox):
    other = send(clicks_app, outbox, "bob@example.com")
    start = utcnow()
    for seconds, (email, url) in enumerate([(sent, BLOG), (other, SHOP), (sent, VIDEO)]):
        with at(start + timedelta(seconds=seconds / 2)):
            client.get(email.paths[url])
    assert all(automated is None for _url, automated in hits(clicks_app))


# PostgreSQL only: SQLite runs one write transaction at a time (BEGIN IMMEDIATE) anyway.
@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_hits_at_the_same_moment_see_each_other(clicks_app, sent):
    """Another hit's transaction is midway (two links of the email recorded, not committed)
    when a third link is hit: the third waits for it, so the burst is found."""
    with clicks_app.app_context():
        engine = db.engine
        subscriber_id = db.session.get_one(ScheduledEmail, sent.email_id).subscriber_id
    answers: list[int] = []
    now = utcnow()
    with at(now), engine.connect() as other:
        midway = other.begin()
        other.execute(
            select(ScheduledEmail.id)
            .where(ScheduledEmail.id == sent.email_id)
            .with_for_update(key_share=True)
        )
        for url in (BLOG, SHOP):
            row = {"email_id": sent.email_id, "subscriber_id": subscriber_id}
            other.execute(insert(Click).values(**row, step_id="guide", url=url, at=now))
        third = threading.Thread(
            target=lambda: answers.append(
                clicks_app.test_client().get(sent.paths[VIDEO]).status_code
            )
        )
        third.start()
        wait_for_a_lock(engine, third)
        midway.commit()
        third.join(timeout=30)
    assert answers == [302]
    assert sorted(hits(clicks_app)) == [
        (BLOG, "burst"),
        (SHOP, "burst"),
        ("https://video.example.com/watch/42", "burst"),
    ]


def wait_for_a_lock(engine, thread: threading.Thread) -> None:
    """Until a session of this database waits on a lock (or the thread ended without)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 30
    with engine.connect() as watcher:
        while thread.is_alive() and time.monotonic() < deadline:
            if watcher.execute(query).scalar():
                return
            time.sleep(0.01)


# --- tokens that are not genuine -------------------------------------------------------------


def forged_tokens(sent: Sent) -> dict[str, str]:
    token = sent.token(BLOG)
    payload, signature = token.split(".")
    flipped = signature[:5] + ("A" if signature[5] != "A" else "B") + signature[6:]
    other_payload = sent.token(SHOP).split(".")[0]
    return {
        "signature-changed": f"{payload}.{flipped}",
        "payload-swapped": f"{other_payload}.{signature}",  # another link, this signature
        "no-signature": payload,
        "empty-signature": f"{payload}.",
        "garbage": "not-a-token",
        "dots": "...",
        "non-ascii": "ünïcode.tökén",
        "long": "x" * 9000,
        "unknown-key": click_tokens.make((OTHER_KEY,), sent.email_id, sent.message_id, BLOG),
        "other-row": click_tokens.make((SECRET,), sent.email_id, "<someone-else@x>", BLOG),
        "no-such-row": click_tokens.make((SECRET,), sent.email_id + 999, sent.message_id, BLOG),
        "huge-id": click_tokens.make((SECRET,), 2**33, sent.message_id, BLOG),
        "javascript": click_tokens.make(
            (SECRET,), sent.email_id, sent.message_id, "javascript:alert(1)"
        ),
        "data": click_tokens.make((SECRET,), sent.email_id, sent.message_id, "data:text/html,x"),
    }


def test_forged_and_foreign_tokens_answer_404_and_record_nothing(clicks_app, client, sent):
    for name, token in forged_tokens(sent).items():
        for method in (client.get, client.head):
            answer = method(f"/r/{token}")
            assert answer.status_code == 404, name
            assert "Location" not in answer.headers, name
    assert hits(clicks_app) == []


def test_a_token_of_one_email_does_not_work_for_another(clicks_app, client, sent, outbox):
    """Cross-email: Ann's link signed over Bob's email id, or Ann's token once SQLite handed
    her erased email's id to someone else's new row, leads nowhere."""
    other = send(clicks_app, outbox, "bob@example.com")
    swapped = click_tokens.make((SECRET,), other.email_id, sent.message_id, BLOG)
    assert client.get(f"/r/{swapped}").status_code == 404
    with clicks_app.app_context():
        bob = db.session.get_one(ScheduledEmail, other.email_id)
        db.session.execute(delete(ScheduledEmail).where(ScheduledEmail.id == sent.email_id))
        reused = ScheduledEmail(
            id=sent.email_id,
            subscriber_id=bob.subscriber_id,
            step_id="guide",
            purpose="resend",
            status="sent",
            anchor_at=bob.anchor_at,
            due_at=bob.due_at,
            message_id="<reused@insideoutstrength.example>",
        )
        db.session.add(reused)
        db.session.commit()
    assert client.get(sent.paths[BLOG]).status_code == 404
    assert hits(clicks_app) == []


def same_database(env: dict[str, str], sequence: Path, **settings: str) -> Flask:
    """Another app on the test's database as it is (make_app would empty it)."""
    app = create_app({**env, "SEQUENCE_FILE": str(sequence), **settings})
    app.config["TESTING"] = True
    return app


def test_a_link_signed_with_an_older_key_still_works(clicks_app, sent, env, tmp_path):
    rotated = same_database(
        env, tmp_path / "templates" / "sequence.toml", SECRET_KEY=f"{OTHER_KEY},{SECRET}"
    )
    assert rotated.test_client().get(sent.paths[BLOG]).headers["Location"] == BLOG
    only_new = same_database(env, tmp_path / "templates" / "sequence.toml", SECRET_KEY=OTHER_KEY)
    assert only_new.test_client().get(sent.paths[BLOG]).status_code == 404


TOKEN_CHARACTERS = string.ascii_letters + string.digits + "-_."


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_token_leads_anywhere_but_where_it_was_signed_to(clicks_app, client, sent, data):
    """Random tokens, and real tokens with characters changed, added or removed: each answers
    404 or the real token's own redirect, never a 3xx elsewhere (and never a 500)."""
    real = data.draw(st.sampled_from(sorted(sent.paths.values()))).removeprefix("/r/")
    expected = client.get(f"/r/{real}").headers["Location"]
    mutated = data.draw(
        st.one_of(
            st.text(TOKEN_CHARACTERS, max_size=200),
            st.text(max_size=60).filter(lambda t: "/" not in t and t not in (".", "..")),
            mutations(real),
        )
    )
    answer = client.get(f"/r/{mutated}")
    if answer.status_code in (301, 302, 303, 307, 308):
        assert answer.headers["Location"] == expected, mutated
    else:
        assert answer.status_code == 404, mutated


URL_CHARACTERS = "".join(chr(c) for c in range(0x21, 0x7F))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    # Host-ish characters most of the time: dots, ports, brackets and user parts are where
    # parsers disagree.
    host=st.one_of(
        st.text("ab1.-_:[]@%x", min_size=1, max_size=12),
        st.text(URL_CHARACTERS, min_size=1, max_size=30),
    ),
    rest=st.text(URL_CHARACTERS, max_size=60),
)
def test_every_link_a_token_may_carry_redirects_cleanly(clicks_app, client, sent, host, rest):
    """Whatever link an email holds: either it is left as written, or its signed redirect
    answers 302 (a Location werkzeug can write: never a 500)."""
    url = f"https://{host}/{rest}"
    if not click_tokens.trackable(url):
        return
    token = click_tokens.make((SECRET,), sent.email_id, sent.message_id, url)
    answer = client.head(f"/r/{token}")
    assert answer.status_code == 302, url


@st.composite
def mutations(draw, token: str) -> str:
    chars = list(token)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(chars)))
        kind = draw(st.sampled_from(["replace", "insert", "delete"]))
        new = draw(st.sampled_from(TOKEN_CHARACTERS))
        if kind == "insert":
            chars.insert(at, new)
        elif chars and at < len(chars):
            if kind == "replace":
                chars[at] = new
            else:
                del chars[at]
    return "".join(chars)


# --- TRACK_CLICKS=false, erasure ------------------------------------------------------------


def test_with_tracking_turned_off_old_links_still_lead_on_and_record_nothing(
    clicks_app, sent, env, tmp_path
):
    off = same_database(env, tmp_path / "templates" / "sequence.toml", TRACK_CLICKS="false")
    answer = off.test_client().get(sent.paths[SHOP])
    assert answer.status_code == 302 and answer.headers["Location"] == SHOP
    assert hits(clicks_app) == []


def test_forgetting_a_person_deletes_their_clicks_and_kills_their_links(
    clicks_app, client, sent, outbox
):
    other = send(clicks_app, outbox, "bob@example.com")
    client.get(sent.paths[BLOG])
    with at(utcnow() + timedelta(minutes=1)):
        client.get(other.paths[SHOP])
    with clicks_app.app_context():
        ann = records.find("ann@example.com")
        assert ann is not None
        assert [c["url"] for c in records.describe(for_app(clicks_app), ann)["clicks"]] == [BLOG]
    with clicks_app.app_context():  # (describe loads the consent records forget must not touch)
        records.forget(for_app(clicks_app), records.find("ann@example.com"))
    assert hits(clicks_app) == [(SHOP, None)]
    assert client.get(sent.paths[BLOG]).status_code == 404

"""The owner's pages: dashboard, subscriber search, one person's timeline, the sequence."""

from __future__ import annotations

import hashlib
import html
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import time_machine
from sqlalchemy import select

from service.core import tokens
from service.core.extensions import db
from service.core.models import ScheduledEmail, Subscriber
from service.core.settings import settings_of
from service.sending.context import for_app
from tests.helpers import api_signup, dispatch_inline, sign_in_owner, submit_form

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


class Page(HTMLParser):
    """Tags and attributes of a page, to check what it loads and how it is built."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def all(self, tag: str) -> list[dict]:
        return [attrs for name, attrs in self.tags if name == tag]


def signed_in(app, client, path: str) -> str:
    sign_in_owner(app, client)
    answer = client.get(path)
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def assert_self_contained(text: str) -> None:
    page = Page(text)
    assert not page.all("script"), "the owner's pages run no script"
    for tag, attrs in page.tags:
        for name in ("src", "href", "action"):
            value = attrs.get(name)
            assert not value or value.startswith("/"), f"<{tag} {name}={value}> leaves the app"


def test_the_dashboard_shows_the_month_the_funnel_and_the_steps(app, client):
    for n, days_ago in enumerate([0, 0, 0, 1, 5, 40]):
        with time_machine.travel(NOW - timedelta(days=days_ago), tick=False):
            assert api_signup(client, f"p{n}@example.com").status_code == 202
            dispatch_inline(app)
    with time_machine.travel(NOW, tick=False):
        body = signed_in(app, client, "/admin/")
    assert_self_contained(body)
    svg = Page(body).all("svg")
    assert svg and svg[0]["role"] == "img" and svg[0]["aria-labelledby"] == "chart-title chart-desc"
    assert '<title id="chart-title">Signups per day, last 30 days</title>' in body
    assert "5 signups from 2026-02-01 to 2026-03-02; the busiest day had 3." in body
    assert len(Page(body).all("rect")) == 30
    table = dict(re.findall(r"<tr><td>([\d-]+)</td><td>(\d+)</td></tr>", body))
    assert len(table) == 30
    assert (table["2026-03-02"], table["2026-03-01"], table["2026-02-25"]) == ("3", "1", "1")
    assert table["2026-02-26"] == "0"
    funnel = re.findall(r'funnel-count">(\d+)</span>\s*<span class="funnel-label">([^<]+)<', body)
    assert funnel == [
        ("6", "Signed up"),
        ("6", "Guide sent"),
        ("0", "Guide downloaded"),
        ("0", "Finished the sequence"),
    ]
    assert "Confirmed" not in body  # only under double opt-in
    steps = re.findall(r'<th scope="row">([a-z-]+)</th>\s*<td class="num">(\d+)</td>', body)
    with app.app_context():  # the published view is read again once its few seconds pass
        step_count = len(for_app(app).content.steps)
    assert steps[0] == ("guide", "6") and len(steps) == step_count
    assert "Time to inbox" in body
    assert "<dd>38 d</dd>" in body  # the second step of the signup 40 days ago, due on day 2


def test_the_dashboard_offers_the_embed_snippet(env):
    from tests.conftest import make_app

    app = make_app({**env, "ALLOWED_ORIGINS": "https://blog.example.com"})
    client = app.test_client()
    body = signed_in(app, client, "/admin/")
    snippet = html.unescape(
        re.search(r'<pre class="snippet"[^>]*><code>(.*?)</code>', body, re.S)[1]
    )
    form = Page(snippet)
    assert "data-leadmagnet" in form.all("form")[0]
    assert {i["name"] for i in form.all("input")} == {"email", "first_name", "consent", "time_zone"}
    assert form.all("script") == [{"src": "https://news.example.org/embed.js", "defer": None}]
    with app.app_context():
        assert for_app(app).content.consent.text in snippet  # the exact text recorded
    assert "Pages on https://blog.example.com may use it" in body


def test_the_funnel_shows_confirmations_under_double_opt_in(env):
    from tests.conftest import make_app

    app = make_app({**env, "DOUBLE_OPT_IN": "true"})
    client = app.test_client()
    assert api_signup(client, "doi@example.com").status_code == 202
    with app.app_context():
        person = db.session.scalar(select(Subscriber))
        token = tokens.make_timed_token(settings_of(app).secret_keys, tokens.CONFIRM, person)
    assert client.post(f"/confirm/{token}").status_code == 200
    body = signed_in(app, client, "/admin/")
    funnel = re.findall(r'funnel-count">(\d+)</span>\s*<span class="funnel-label">([^<]+)<', body)
    assert funnel[:2] == [("1", "Signed up"), ("1", "Confirmed")]


def test_subscribers_are_searched_by_part_of_the_address_and_filtered_by_status(app, client):
    for address in ["Ann@Example.com", "joanne@example.org", "bob@example.com", "100%@example.com"]:
        assert api_signup(client, address).status_code == 202
    with app.app_context():
        db.session.scalar(
            select(Subscriber).where(Subscriber.email == "bob@example.com")
        ).status = "unsubscribed"
        db.session.commit()
    sign_in_owner(app, client)

    def listed(query: str) -> list[str]:
        body = client.get(f"/admin/subscribers?{query}").get_data(as_text=True)
        return re.findall(r'<a href="/admin/subscribers/\d+">([^<]+)</a>', body)

    assert sorted(listed("q=ANN")) == ["Ann@example.com", "joanne@example.org"]
    assert listed("q=%25") == ["100%@example.com"]  # a literal %, not a wildcard
    assert listed("status=unsubscribed") == ["bob@example.com"]
    assert listed("q=example.com&status=active") == ["100%@example.com", "Ann@example.com"]
    assert len(listed("status=nonsense")) == 4


def test_the_list_has_fifty_a_page(app, client):
    for n in range(55):
        assert api_signup(client, f"person{n:02d}@example.com").status_code == 202
    sign_in_owner(app, client)
    first = client.get("/admin/subscribers").get_data(as_text=True)
    rows = re.findall(r'<a href="/admin/subscribers/(\d+)">', first)
    assert len(rows) == 50 and "Page 1 of 2" in first
    assert 'href="/admin/subscribers?page=2" rel="next"' in first
    second = client.get("/admin/subscribers?page=2").get_data(as_text=True)
    assert len(re.findall(r'<a href="/admin/subscribers/(\d+)">', second)) == 5
    assert not set(rows) & set(re.findall(r'<a href="/admin/subscribers/(\d+)">', second))


def test_a_timeline_holds_consent_evidence_emails_downloads_and_the_unsubscribe(app, client):
    headers = {"User-Agent": "Mozilla/5.0 (Timeline test)", "Referer": "https://blog.example.com/"}
    with time_machine.travel(NOW, tick=False):
        client.environ_base.update(HTTP_USER_AGENT=headers["User-Agent"])
        answer = submit_form(
            client,
            email="tia@example.com",
            first_name="Tia",
            page="https://blog.example.com/squats",
        )
        assert answer.status_code == 303
    with time_machine.travel(NOW + timedelta(seconds=2), tick=False):
        assert dispatch_inline(app) == ["sent"]
    with app.app_context():
        person = db.session.scalar(select(Subscriber))
        email = db.session.scalar(select(ScheduledEmail))
        keys = settings_of(app).secret_keys
        guide = tokens.make_token(keys, tokens.GUIDE, person)
        leave = tokens.make_token(keys, tokens.UNSUBSCRIBE, person)
        person_id, message_id = person.id, email.message_id
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        assert client.get(f"/guide/{guide}").status_code == 200
    with time_machine.travel(NOW + timedelta(minutes=9), tick=False):
        assert (
            client.post(f"/unsubscribe/{leave}", data={"List-Unsubscribe": "One-Click"}).status_code
            == 200
        )

    with time_machine.travel(NOW + timedelta(minutes=10), tick=False):
        body = signed_in(app, client, f"/admin/subscribers/{person_id}")
    assert_self_contained(body)
    with app.app_context():
        consent = for_app(app).content.consent
    assert html.escape(consent.text) in body
    assert consent.version in body
    assert hashlib.sha256(consent.text.encode()).hexdigest() in body
    assert "https://blog.example.com/squats" in body and "127.0.0.1" in body
    assert "Mozilla/5.0 (Timeline test)" in body
    assert html.escape(message_id) in body
    assert "250 written to" in body  # the transport's reply to the delivery attempt
    titles = re.findall(r"<h3>([^<]+)</h3>", body)
    assert titles[:4] == [
        "Consented",
        html.escape("Email “guide”: sent"),
        "Downloaded the guide",
        "Unsubscribed (consent withdrawn)",
    ]
    times = re.findall(r'<p class="timeline-when"><time datetime="([^"]+)"', body)
    assert times == sorted(times)


def test_an_unknown_subscriber_is_404(app, client):
    sign_in_owner(app, client)
    assert client.get("/admin/subscribers/999").status_code == 404


def test_the_sequence_page_previews_every_step_and_shows_the_check(app, client):
    body = signed_in(app, client, "/admin/sequence")
    with app.app_context():
        steps = for_app(app).content.steps
    frames = Page(body).all("iframe")
    assert len(frames) == len(steps) + 1  # and the double opt-in confirmation
    for frame in frames:
        assert frame["sandbox"] is None and frame["srcdoc"].lstrip().lower().startswith("<!doctype")
        assert frame["title"].startswith("HTML part of ")
    for step in steps:
        assert f'id="step-{step.id}"' in body
    assert "Sam, your free guide is here" in body  # a subject, rendered for the sample Sam
    assert f"sequence.toml: {len(steps)} steps" in body  # the check's own output
    assert "subscribers waiting for each step:" in body
    assert "default-src 'none'" in client.get("/admin/sequence").headers["Content-Security-Policy"]


def test_a_page_number_that_is_not_one_is_a_bad_request(app, client):
    sign_in_owner(app, client)
    api_signup(client, "ann@example.com")
    assert client.get("/admin/subscribers?page=1").status_code == 200
    assert client.get("/admin/subscribers?page=9999").status_code == 200  # past the end: empty
    for page in ("1e21", "10000000000000000000000", "0", "-1", "2.5", "", " 1", "\u0661"):
        assert client.get("/admin/subscribers", query_string={"page": page}).status_code == 400, (
            page
        )


def test_an_id_too_large_for_the_database_is_not_found(app, client):
    sign_in_owner(app, client)
    for subscriber_id in ("2147483648", "9223372036854775808", "9" * 30):
        assert client.get(f"/admin/subscribers/{subscriber_id}").status_code == 404

"""Each magnet's own form: GET /m/<slug>, POST /subscribe with its hidden field, the API's
"magnet" field, embed.js's data-magnet, and the dashboard's snippet of one magnet."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

from sqlalchemy import select

from service.core.extensions import db
from service.core.models import ConsentRecord, Enrolment, ScheduledEmail, Subscriber
from tests.core.test_nudges import nudged
from tests.helpers import CSRF, api_signup
from tests.magnets import KNEE, KNEE_CONSENT, KNEE_TITLE, add_magnet, default_id, magnet_context
from tests.web.test_admin_pages import Page, signed_in


def test_a_magnets_page_has_the_forms_fields_and_its_own_consent_text(app, client):
    knee = add_magnet(app)
    answer = client.get(f"/m/{KNEE}")
    assert answer.status_code == 200
    page = Page(answer.get_data(as_text=True))
    [form] = [f for f in page.all("form") if f.get("method") == "post"]
    assert form["action"] == "/subscribe"
    inputs = {i["name"]: i for i in page.all("input")}
    assert {"email", "first_name", "consent", "magnet"} <= set(inputs)
    assert "checked" not in inputs["consent"]
    assert inputs["magnet"] == {"type": "hidden", "name": "magnet", "value": KNEE}
    with app.app_context():
        consent = magnet_context(app, knee).content.consent.text
    assert consent == KNEE_CONSENT  # its own words, not the default magnet's
    assert html.escape(consent, quote=False) in answer.get_data(as_text=True)
    assert html.escape(KNEE_CONSENT, quote=False) not in client.get("/").get_data(as_text=True)
    # The default page is as it was: no magnet field.
    assert "magnet" not in {
        i["name"] for i in Page(client.get("/").get_data(as_text=True)).all("input")
    }


def test_the_hosted_form_of_a_magnet_signs_up_for_that_magnet(app, client):
    knee = add_magnet(app)
    token = CSRF.search(client.get(f"/m/{KNEE}").get_data(as_text=True))[1]
    fields = {"csrf_token": token, "email": "ann@example.com", "consent": "yes", "magnet": KNEE}
    answer = client.post("/subscribe", data=fields)
    assert answer.status_code == 303
    assert answer.headers["Location"] == f"/m/{KNEE}/thanks"
    assert client.get(f"/m/{KNEE}/thanks").status_code == 200
    with app.app_context():
        [entry] = db.session.scalars(select(ConsentRecord)).all()
        assert (entry.magnet_id, entry.source) == (knee, "hosted-form")
        assert entry.text == magnet_context(app, knee).content.consent.text
        [email] = db.session.scalars(select(ScheduledEmail)).all()
        assert email.magnet_id == knee and nudged(app) == [email.id]


def test_an_unknown_magnet_on_the_form_is_an_error_beside_it(app, client):
    token = CSRF.search(client.get("/").get_data(as_text=True))[1]
    fields = {"csrf_token": token, "email": "ann@example.com", "consent": "yes", "magnet": "nope"}
    answer = client.post("/subscribe", data=fields)
    assert answer.status_code == 422
    assert "There is no guide by that name." in answer.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(Subscriber)).all() == []


def test_the_api_takes_an_optional_magnet(app, client):
    knee, default = add_magnet(app), default_id(app)
    assert api_signup(client, "ann@example.com", magnet=KNEE).status_code == 202
    assert api_signup(client, "bo@example.com").status_code == 202
    assert api_signup(client, "cy@example.com", magnet=None).status_code == 202
    with app.app_context():
        taken = db.session.execute(
            select(Subscriber.email, Enrolment.magnet_id).join(
                Enrolment, Enrolment.subscriber_id == Subscriber.id
            )
        ).all()
        assert sorted(taken) == [
            ("ann@example.com", knee),
            ("bo@example.com", default),
            ("cy@example.com", default),
        ]


def test_an_unknown_archived_or_malformed_magnet_is_422_on_magnet(app, client):
    add_magnet(app, "old-guide", "An old guide", archived_at=datetime(2026, 1, 1, tzinfo=UTC))
    for value in ["nope", "old-guide", 7, ["knee-checklist"], {"slug": "x"}, True, "x" * 500, ""]:
        answer = api_signup(client, "ann@example.com", magnet=value)
        if value == "":
            assert answer.status_code == 202  # empty: the default, as absent
            continue
        assert answer.status_code == 422, value
        assert set(answer.get_json()["errors"]) == {"magnet"}, value
    # Other faults are reported beside it.
    answer = client.post("/api/subscribe", json={"email": "bad", "magnet": "nope"})
    assert set(answer.get_json()["errors"]) == {"email", "consent", "magnet"}


def test_the_same_answer_whichever_magnet_and_whoever_asks(app, client):
    add_magnet(app)
    first = api_signup(client, "ann@example.com", magnet=KNEE)
    again = api_signup(client, "ann@example.com", magnet=KNEE)
    other = api_signup(client, "ann@example.com")
    assert {r.status_code for r in (first, again, other)} == {202}
    assert first.get_json() == again.get_json() == other.get_json() == {"status": "accepted"}


def test_an_archived_magnets_page_is_gone_kindly_and_an_unknown_one_is_404(app, client):
    add_magnet(app, "old-guide", "An old guide", archived_at=datetime(2026, 1, 1, tzinfo=UTC))
    answer = client.get("/m/old-guide")
    assert answer.status_code == 410
    assert "An old guide is no longer offered" in answer.get_data(as_text=True)
    assert client.get("/m/old-guide/thanks").status_code == 410
    assert client.get("/m/nothing-here").status_code == 404
    assert client.get("/m/" + "x" * 300).status_code == 404


def test_embed_js_sends_the_forms_magnet(client):
    script = client.get("/embed.js").get_data(as_text=True)
    assert 'form.getAttribute("data-magnet")' in script
    assert "body.magnet = magnet" in script


def test_the_dashboard_offers_each_magnets_snippet(app, client):
    knee = add_magnet(app)
    body = signed_in(app, client, f"/admin/?magnet={KNEE}")
    snippet = html.unescape(
        re.search(r'<pre class="snippet"[^>]*><code>(.*?)</code>', body, re.S)[1]
    )
    [form] = Page(snippet).all("form")
    assert form["data-magnet"] == KNEE
    with app.app_context():
        assert magnet_context(app, knee).content.consent.text in snippet
    assert f"Dashboard: {KNEE_TITLE}" in body
    default = html.unescape(
        re.search(
            r'<pre class="snippet"[^>]*><code>(.*?)</code>',
            client.get("/admin/").get_data(as_text=True),
            re.S,
        )[1]
    )
    assert "data-magnet" not in default
    assert client.get("/admin/?magnet=nope").status_code == 404


def test_a_persons_page_lists_their_magnets_and_names_each_entrys_magnet(app, client):
    knee = add_magnet(app)
    api_signup(client, "ann@example.com", magnet=KNEE)
    api_signup(client, "ann@example.com")
    with app.app_context():
        from service.people.consent import RequestMeta
        from service.people.unsubscribe import leave_magnet
        from service.sending.context import for_app

        ann = db.session.scalars(select(Subscriber.id)).one()
        with app.test_request_context():
            leave_magnet(for_app(app), ann, knee, RequestMeta("test", None, None, None))
    body = signed_in(app, client, f"/admin/subscribers/{ann}")
    assert f"{KNEE_TITLE} (<code>{KNEE}</code>): stopped (only-this-magnet)" in body
    assert f"Stopped the emails about {KNEE} (consent withdrawn)" in body


def test_a_magnet_with_nothing_published_takes_no_signups(app, client):
    with app.app_context():
        from service.core.models import Magnet

        db.session.add(Magnet(slug="draft-only", title="Not yet"))
        db.session.commit()
    assert client.get("/m/draft-only").status_code == 404
    answer = api_signup(client, "ann@example.com", magnet="draft-only")
    assert answer.status_code == 422 and set(answer.get_json()["errors"]) == {"magnet"}


def test_the_openapi_document_describes_the_magnet_field(client):
    document = client.get("/api/openapi.json").get_json()
    body = document["paths"]["/api/subscribe"]["post"]["requestBody"]["content"]
    magnet = body["application/json"]["schema"]["properties"]["magnet"]
    assert magnet["type"] == ["string", "null"] and "422" in magnet["description"]

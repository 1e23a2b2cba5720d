"""The contract's HTTP rules for the hosted form and the JSON API, signing up again, rate limits."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from service.consent import RequestMeta
from service.extensions import db
from service.models import ConsentRecord, Purpose, ScheduledEmail, Subscriber
from service.unsubscribe import unsubscribe
from tests.conftest import make_app
from tests.helpers import (
    api_signup,
    csrf_token,
    dispatch_inline,
    outbox_messages,
    parts,
    submit_form,
)

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
OVER_16_KIB = 16 * 1024 + 1


class Forms(HTMLParser):
    """The forms of a page and the attributes of their inputs, keyed by input name."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self.forms.append({"attrs": attributes, "inputs": {}})
        elif tag == "input" and self.forms and attributes.get("name"):
            self.forms[-1]["inputs"][attributes["name"]] = attributes


def signup_form(page: str) -> dict:
    [form] = [f for f in Forms(page).forms if (f["attrs"].get("method") or "").lower() == "post"]
    return form


def count(app: Flask, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def subscribers(app: Flask) -> int:
    return count(app, Subscriber)


# --- the hosted form ---------------------------------------------------------------------


def test_the_signup_page_has_a_post_form_with_email_first_name_and_an_unticked_consent_box(
    client: FlaskClient,
):
    response = client.get("/")
    assert response.status_code == 200
    inputs = signup_form(response.get_data(as_text=True))["inputs"]
    assert {"email", "first_name", "consent"} <= set(inputs)
    assert inputs["consent"]["type"] == "checkbox"
    assert "checked" not in inputs["consent"]


def test_a_form_post_without_a_csrf_token_is_refused_and_stores_nothing(
    app: Flask, client: FlaskClient
):
    client.get("/")
    response = client.post("/subscribe", data={"email": "ann@example.com", "consent": "yes"})
    assert response.status_code == 400
    assert subscribers(app) == 0


def test_a_form_post_with_a_forged_csrf_token_is_refused(app: Flask, client: FlaskClient):
    client.get("/")
    data = {"csrf_token": "forged", "email": "ann@example.com", "consent": "yes"}
    assert client.post("/subscribe", data=data).status_code == 400
    assert subscribers(app) == 0


def test_a_valid_form_redirects_with_303_to_a_thank_you_page(app: Flask, client: FlaskClient):
    response = submit_form(client, email="ann@example.com", first_name="Ann")
    assert response.status_code == 303
    assert client.get(response.headers["Location"]).status_code == 200
    assert subscribers(app) == 1


def test_an_invalid_form_answers_422_and_shows_the_entered_values_again(
    app: Flask, client: FlaskClient
):
    response = client.post(
        "/subscribe",
        data={"csrf_token": csrf_token(client), "email": "ann@@example", "first_name": "Zoë"},
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    inputs = signup_form(page)["inputs"]
    assert inputs["email"]["value"] == "ann@@example"
    assert inputs["first_name"]["value"] == "Zoë"
    assert 'id="email-error"' in page and 'id="consent-error"' in page
    assert subscribers(app) == 0


def test_the_first_name_is_optional_on_the_form(app: Flask, client: FlaskClient):
    assert submit_form(client, email="ann@example.com").status_code == 303
    with app.app_context():
        assert db.session.scalars(select(Subscriber.first_name)).one() is None


@pytest.mark.parametrize("consent", [None, "", "no", "off"], ids=["missing", "empty", "no", "off"])
def test_a_form_without_consent_is_an_error_on_consent(
    app: Flask, client: FlaskClient, consent: str | None
):
    data = {"csrf_token": csrf_token(client), "email": "ann@example.com"}
    if consent is not None:
        data["consent"] = consent
    response = client.post("/subscribe", data=data)
    assert response.status_code == 422
    assert 'id="consent-error"' in response.get_data(as_text=True)
    assert subscribers(app) == 0


def test_a_filled_honeypot_looks_accepted_but_stores_nothing(app: Flask, client: FlaskClient):
    form = submit_form(client, email="bot@example.com", website="https://spam.example.com")
    api = api_signup(client, "bot2@example.com", website="https://spam.example.com")
    assert form.status_code == 303
    assert api.status_code == 202 and api.get_json() == {"status": "accepted"}
    assert subscribers(app) == 0


def test_a_form_body_over_16_kib_answers_413_and_stores_nothing(app: Flask, client: FlaskClient):
    response = submit_form(client, email="ann@example.com", page="x" * OVER_16_KIB)
    assert response.status_code == 413
    assert subscribers(app) == 0


# --- the JSON API --------------------------------------------------------------------------


def test_the_api_answers_the_same_202_for_new_subscribed_and_unsubscribed_addresses(
    app: Flask, client: FlaskClient
):
    new = api_signup(client, "ann@example.com")
    again = api_signup(client, "ann@example.com")
    with app.app_context():
        subscriber_id = db.session.scalars(select(Subscriber.id)).one()
        unsubscribe(subscriber_id, RequestMeta("test", None, None, None))
    returning = api_signup(client, "ann@example.com")
    for response in (new, again, returning):
        assert response.status_code == 202
        assert response.mimetype == "application/json"
        assert response.get_json() == {"status": "accepted"}
    assert new.get_data() == again.get_data() == returning.get_data()


def test_the_first_name_is_optional_in_the_api(app: Flask, client: FlaskClient):
    assert api_signup(client, "ann@example.com").status_code == 202
    assert api_signup(client, "bea@example.com", first_name=None).status_code == 202
    assert subscribers(app) == 2


@pytest.mark.parametrize(
    "body",
    ['{"email": "ann@example.com", "consent": tru', "{'email': 'ann@example.com'}", "", "\xff"],
    ids=["truncated", "single-quotes", "empty", "not-utf8"],
)
def test_malformed_json_answers_400(app: Flask, client: FlaskClient, body: str):
    response = client.post("/api/subscribe", data=body, content_type="application/json")
    assert response.status_code == 400
    assert "error" in response.get_json()
    assert subscribers(app) == 0


NESTED = "[" * 14_000  # deeper than the parser's recursion limit, well under 16 KiB


@pytest.mark.parametrize("body", [NESTED, '{"email": ' + NESTED], ids=["array", "in-object"])
def test_deeply_nested_json_answers_400(app: Flask, client: FlaskClient, body: str):
    response = client.post("/api/subscribe", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json() == {"error": "the body is not valid JSON"}
    assert subscribers(app) == 0


@pytest.mark.parametrize(
    "payload",
    [["ann@example.com"], "ann@example.com", None, 1],
    ids=["array", "string", "null", "number"],
)
def test_a_json_body_that_is_not_an_object_answers_400(
    app: Flask, client: FlaskClient, payload: object
):
    response = client.post(
        "/api/subscribe", data=json.dumps(payload), content_type="application/json"
    )
    assert response.status_code == 400
    assert subscribers(app) == 0


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_the_api_refuses_other_content_types_with_415(
    app: Flask, client: FlaskClient, content_type: str
):
    body = json.dumps({"email": "ann@example.com", "consent": True})
    response = client.post("/api/subscribe", data=body, content_type=content_type)
    assert response.status_code == 415
    assert subscribers(app) == 0


def test_an_api_body_over_16_kib_answers_413_and_stores_nothing(app: Flask, client: FlaskClient):
    response = api_signup(client, "ann@example.com", page="x" * OVER_16_KIB)
    assert response.status_code == 413
    assert response.get_json()["error"]
    assert subscribers(app) == 0


@pytest.mark.parametrize(
    "consent",
    [False, "true", None, 1, "yes", [True]],
    ids=["false", "string-true", "null", "one", "string-yes", "list"],
)
def test_api_consent_must_be_the_json_value_true(app: Flask, client: FlaskClient, consent: object):
    response = client.post("/api/subscribe", json={"email": "ann@example.com", "consent": consent})
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"consent"}
    assert subscribers(app) == 0


def test_api_consent_missing_is_an_error_on_consent(app: Flask, client: FlaskClient):
    response = client.post("/api/subscribe", json={"email": "ann@example.com"})
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"consent"}


def test_every_faulty_field_is_named_at_once(client: FlaskClient):
    response = client.post("/api/subscribe", json={"email": "nope", "first_name": 7})
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"email", "first_name", "consent"}


# --- signing up again ----------------------------------------------------------------------


def guide_rows(app: Flask) -> tuple[int, int]:
    """(drip rows of the first step, resend rows)."""
    with app.app_context():
        rows = db.session.scalars(select(ScheduledEmail).where(ScheduledEmail.step_id == "guide"))
        purposes = [row.purpose for row in rows]
    return purposes.count(Purpose.DRIP), purposes.count(Purpose.RESEND)


def guide_emails(outbox: Path) -> int:
    return sum("your free guide is here" in m["Subject"] for m in outbox_messages(outbox))


def test_an_active_subscriber_gets_the_guide_again_at_most_once_a_day_without_restarting_the_drip(
    app: Flask, client: FlaskClient, outbox: Path
):
    with time_machine.travel(START, tick=False) as traveller:
        assert api_signup(client, "ann@example.com").status_code == 202
        dispatch_inline(app)
        traveller.shift(timedelta(minutes=30))
        assert submit_form(client, email="ann@example.com").status_code == 303
        assert api_signup(client, "ann@example.com").status_code == 202
        dispatch_inline(app)
        assert guide_rows(app) == (1, 0)
        assert guide_emails(outbox) == 1

        traveller.shift(timedelta(hours=25))
        assert api_signup(client, "ann@example.com").status_code == 202
        dispatch_inline(app)
        assert guide_rows(app) == (1, 1)
        assert guide_emails(outbox) == 2

        traveller.shift(timedelta(minutes=30))
        assert api_signup(client, "ann@example.com").status_code == 202
        dispatch_inline(app)
        assert guide_rows(app) == (1, 1)
        assert guide_emails(outbox) == 2
    with app.app_context():
        assert db.session.scalars(select(Subscriber.status)).one() == "active"


def test_an_unsubscribed_person_who_signs_up_again_waits_for_the_confirmation_link(
    app: Flask, client: FlaskClient, outbox: Path
):
    assert api_signup(client, "ann@example.com").status_code == 202
    dispatch_inline(app)
    with app.app_context():
        subscriber_id = db.session.scalars(select(Subscriber.id)).one()
        unsubscribe(subscriber_id, RequestMeta("test", None, None, None))
    assert submit_form(client, email="ann@example.com").status_code == 303
    assert dispatch_inline(app) == ["sent"]
    [_, confirmation] = outbox_messages(outbox)
    assert confirmation["Subject"] == "Confirm your email to get your free guide"
    with app.app_context():
        subscriber = db.session.get(Subscriber, subscriber_id)
        assert subscriber.status == "pending"
        actions = db.session.scalars(
            select(ConsentRecord.action)
            .where(ConsentRecord.subscriber_id == subscriber_id)
            .order_by(ConsentRecord.id)
        ).all()
    assert actions == ["consent", "withdrawal", "consent"]


CONFIRM_PATH = re.compile(r"https://news\.example\.org(/confirm/\S+)")


def confirm_path(outbox: Path) -> str:
    """The link of the latest confirmation email."""
    confirmations = [m for m in outbox_messages(outbox) if m["Subject"].startswith("Confirm")]
    return CONFIRM_PATH.search(parts(confirmations[-1])[0]).group(1)  # type: ignore[union-attr]


def person(app: Flask, address: str = "ann@example.com") -> Subscriber:
    with app.app_context():
        return db.session.scalars(select(Subscriber).where(Subscriber.email == address)).one()


@pytest.mark.parametrize("double_opt_in", ["false", "true"], ids=["direct", "double-opt-in"])
def test_signing_up_again_renames_nobody(env: dict[str, str], outbox: Path, double_opt_in: str):
    """Anyone can type anyone's address: a repeat signup of an active subscriber keeps
    their name and time zone, and answers exactly what a new address gets."""
    app = make_app({**env, "DOUBLE_OPT_IN": double_opt_in})
    client = app.test_client()
    with time_machine.travel(START, tick=False) as traveller:
        new = api_signup(client, "ann@example.com", first_name="Ann", time_zone="Europe/Paris")
        dispatch_inline(app)
        if double_opt_in == "true":
            assert app.test_client().post(confirm_path(outbox)).status_code == 200
            dispatch_inline(app)
        traveller.shift(timedelta(hours=25))
        again = api_signup(
            client, "ann@example.com", first_name="Mallory", time_zone="America/New_York"
        )
        assert submit_form(client, email="ann@example.com", first_name="Mallory").status_code == 303
        assert again.get_data() == new.get_data()
        dispatch_inline(app)
    ann = person(app)
    assert (ann.first_name, ann.time_zone, ann.status) == ("Ann", "Europe/Paris", "active")
    guide = outbox_messages(outbox)[-1]
    assert guide["Subject"] == "Ann, your free guide is here"
    assert guide["To"].addresses[0].display_name == "Ann"


def test_a_new_name_takes_effect_when_the_confirmation_link_is_followed(
    env: dict[str, str], outbox: Path
):
    app = make_app({**env, "DOUBLE_OPT_IN": "true"})
    client = app.test_client()
    with time_machine.travel(START, tick=False) as traveller:
        api_signup(client, "ann@example.com", first_name="Ann")
        traveller.shift(timedelta(hours=25))
        api_signup(client, "ann@example.com", first_name="Annie", time_zone="Europe/Oslo")
        dispatch_inline(app)
        assert (person(app).first_name, person(app).time_zone) == ("Ann", None)
        page = app.test_client().get(confirm_path(outbox))
        assert "<strong>Annie</strong>" in page.get_data(as_text=True)  # what they confirm
        assert person(app).first_name == "Ann"
        assert app.test_client().post(confirm_path(outbox)).status_code == 200
        dispatch_inline(app)
    assert (person(app).first_name, person(app).time_zone) == ("Annie", "Europe/Oslo")
    assert outbox_messages(outbox)[-1]["Subject"] == "Annie, your free guide is here"


# --- rate limits ---------------------------------------------------------------------------


@pytest.fixture
def limited_app(env: dict[str, str]):
    app = make_app({**env, "RATELIMIT_ENABLED": "true"})
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_one_address_is_limited_to_5_accepted_signups_an_hour(limited_app: Flask):
    client = limited_app.test_client()
    with time_machine.travel(START, tick=False) as traveller:
        for _ in range(5):
            assert api_signup(client, "ann@example.com").status_code == 202
            traveller.shift(timedelta(minutes=5))
        refused = api_signup(client, "ann@example.com")
        assert refused.status_code == 429
        assert refused.get_json()["error"]
        assert submit_form(client, email="ANN@example.com").status_code == 429
        assert api_signup(client, "bea@example.com").status_code == 202
        traveller.shift(timedelta(hours=1))
        assert api_signup(client, "ann@example.com").status_code == 202


def test_the_address_limit_counts_the_mailbox_not_the_spelling(limited_app: Flask, outbox: Path):
    """victim+1@ to victim+6@ reach one inbox: the sixth is refused, and no email goes for it."""
    client = limited_app.test_client()
    spellings = [
        "victim+1@gmail.com",
        "Vic.Tim+2@gmail.com",
        "v.i.c.t.i.m@googlemail.com",
        "VICTIM+4@gmail.com",
        "victim+5@gmail.com",
    ]
    with time_machine.travel(START, tick=False) as traveller:
        for address in spellings:
            assert api_signup(client, address).status_code == 202
        assert api_signup(client, "victim+6@gmail.com").status_code == 429
        assert submit_form(client, email="victim@gmail.com").status_code == 429
        assert api_signup(client, "other+1@gmail.com").status_code == 202
        dispatch_inline(limited_app)
        traveller.shift(timedelta(hours=1))
        assert api_signup(client, "victim+6@gmail.com").status_code == 202
    guides = [m["To"].addresses[0].addr_spec for m in outbox_messages(outbox)]
    assert sorted(guides) == sorted([*spellings, "other+1@gmail.com"])  # each as typed


def test_one_client_ip_is_limited_to_30_accepted_signups_a_minute(limited_app: Flask):
    client = limited_app.test_client()
    with time_machine.travel(START, tick=False) as traveller:
        for n in range(30):
            assert api_signup(client, f"person{n}@example.com").status_code == 202
        assert api_signup(client, "one-more@example.com").status_code == 429
        assert submit_form(client, email="one-more@example.com").status_code == 429
        other = limited_app.test_client()
        elsewhere = other.post(
            "/api/subscribe",
            json={"email": "one-more@example.com", "consent": True},
            environ_base={"REMOTE_ADDR": "192.0.2.7"},
        )
        assert elsewhere.status_code == 202
        traveller.shift(timedelta(minutes=1))
        assert api_signup(client, "next-minute@example.com").status_code == 202
    assert subscribers(limited_app) == 32


def test_invalid_submissions_do_not_use_up_the_allowance(limited_app: Flask):
    client = limited_app.test_client()
    with time_machine.travel(START, tick=False):
        for _ in range(40):
            refused = client.post("/api/subscribe", json={"email": "ann@example.com"})
            assert refused.status_code == 422
        for _ in range(5):
            assert api_signup(client, "ann@example.com").status_code == 202
        for n in range(25):
            assert api_signup(client, f"person{n}@example.com").status_code == 202
        assert api_signup(client, "ann@example.com").status_code == 429
        assert api_signup(client, "one-more@example.com").status_code == 429


def test_oversized_and_malformed_bodies_keep_their_answers_with_rate_limits_on(limited_app: Flask):
    """The per-address limit reads the body too; it must not turn these into 500s."""
    client = limited_app.test_client()
    assert api_signup(client, "ann@example.com", page="x" * OVER_16_KIB).status_code == 413
    assert submit_form(client, email="ann@example.com", page="x" * OVER_16_KIB).status_code == 413
    broken = client.post("/api/subscribe", data="{", content_type="application/json")
    assert broken.status_code == 400
    listed = client.post("/api/subscribe", json=["ann@example.com"])
    assert listed.status_code == 400
    nested = client.post("/api/subscribe", data=NESTED, content_type="application/json")
    assert nested.status_code == 400
    assert subscribers(limited_app) == 0

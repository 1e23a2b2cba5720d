"""What every provider's events do (bounces, complaints, replays, soft-bounce counts), and
what every provider's URL answers: routing, settings, odd and nested bodies."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from service.capture.confirm import confirm
from service.core.extensions import db
from service.core.models import Subscriber
from service.core.settings import Settings, SettingsError
from service.people.consent import RequestMeta
from service.sending.context import for_app
from tests.conftest import SECRET, make_app
from tests.helpers import api_signup, dispatch_inline
from tests.webhooks.payloads import (
    ANN,
    MAILGUN_FAILED,
    MAILGUN_KEY,
    POSTMARK_BOUNCE,
    POSTMARK_TOKEN,
    PROVIDERS,
    TOPIC,
    Keys,
    State,
    Webhook,
    _ses_notice,
    event_rows,
    mailgun_signature,
    sendgrid_headers,
    sns_message,
    state,
)

# --- every provider -----------------------------------------------------------------------


def test_a_hard_bounce_marks_bounced_and_cancels_what_is_scheduled(
    app: Flask, ann: State, webhook: Webhook
):
    response = webhook.send("hard")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"accepted": 1}
    assert state(app) == State("bounced", 0, 1, 1)
    [row] = event_rows(app)
    assert (row.provider, row.kind) == (webhook.name, "hard_bounce")
    assert ANN not in (row.detail or "") and ANN not in row.event_id  # no address in clear
    assert dispatch_inline(app) == []  # nothing is left to send


def test_a_complaint_marks_complained_and_cancels_what_is_scheduled(
    app: Flask, ann: State, webhook: Webhook
):
    response = webhook.send("complaint")
    assert response.status_code == 200 and response.get_json() == {"accepted": 1}
    assert state(app) == State("complained", 0, 1, 1)


def test_a_replayed_request_changes_nothing(app: Flask, ann: State, webhook: Webhook):
    # Five soft bounces would suppress Ann: five copies of one are one soft bounce.
    body, headers = webhook.request("soft")
    answers = [webhook.post(body, headers) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert [a.get_json()["accepted"] for a in answers] == [1, 0, 0, 0, 0]
    assert state(app) == State("active", 1, 0, 1)


def test_five_soft_bounces_suppress_and_four_do_not(app: Flask, ann: State, webhook: Webhook):
    for n in range(4):
        assert webhook.send("soft", n).get_json() == {"accepted": 1}
    assert state(app) == State("active", 1, 0, 4)
    assert webhook.send("soft", 4).get_json() == {"accepted": 1}
    assert state(app) == State("bounced", 0, 1, 5)


def test_bounces_and_complaints_are_counted_once_each(app: Flask, ann: State, webhook: Webhook):
    from prometheus_client import REGISTRY

    def counted() -> list[float]:
        names = ("leadmagnet_bounces_total", "leadmagnet_complaints_total")
        return [REGISTRY.get_sample_value(name) or 0.0 for name in names]

    before = counted()
    body, headers = webhook.request("soft", 0)
    for _ in range(3):  # one event, delivered three times by a retrying provider
        assert webhook.post(body, headers).status_code == 200
    assert webhook.send("hard", 1).status_code == 200
    assert webhook.send("complaint", 2).status_code == 200
    assert [after - start for after, start in zip(counted(), before, strict=True)] == [2, 1]


def test_a_bad_signature_is_403_and_changes_nothing(app: Flask, ann: State, webhook: Webhook):
    response = webhook.send("complaint", signing="bad")
    assert response.status_code == 403
    assert "accepted" not in response.get_json()
    assert state(app) == ann


def test_an_unsigned_request_is_403_and_changes_nothing(app: Flask, ann: State, webhook: Webhook):
    assert webhook.send("hard", signing="none").status_code == 403
    assert state(app) == ann


def test_malformed_json_is_400(app: Flask, ann: State, webhook: Webhook, keys: Keys):
    body = b'{"RecordType": "Bounce", '
    headers = {
        "postmark": {"X-Postmark-Token": POSTMARK_TOKEN},
        "sendgrid": sendgrid_headers(keys, body),
    }.get(webhook.name, {})
    response = webhook.post(body, headers)
    assert response.status_code == 400
    assert state(app) == ann


def test_an_unknown_address_is_recorded_and_nothing_else_happens(
    app: Flask, ann: State, webhook: Webhook
):
    assert webhook.send("complaint", email="stranger@example.net").get_json() == {"accepted": 1}
    assert state(app) == State("active", 1, 0, 1)


def test_the_address_matches_whatever_its_case(app: Flask, ann: State, webhook: Webhook):
    assert webhook.send("hard", email="ANN@Example.COM").status_code == 200
    assert state(app).status == "bounced"


# --- routing and configuration -------------------------------------------------------------


def test_an_unknown_provider_is_404(client: FlaskClient):
    response = client.post("/webhooks/sparkpost", json=[])
    assert response.status_code == 404 and "error" in response.get_json()


@pytest.mark.parametrize(
    "provider,setting",
    [
        ("ses", "SES_TOPIC_ARN"),
        ("postmark", "POSTMARK_WEBHOOK_TOKEN"),
        ("mailgun", "MAILGUN_WEBHOOK_SIGNING_KEY"),
        ("sendgrid", "SENDGRID_WEBHOOK_PUBLIC_KEY"),
    ],
)
def test_a_provider_without_its_key_is_404(
    env: dict[str, str], keys: Keys, provider: str, setting: str
):
    app = make_app({**env, setting: ""})
    webhook = Webhook(provider, app.test_client(), keys)
    assert webhook.send("hard").status_code == 404
    with app.app_context():
        db.engine.dispose()


def test_get_is_405(client: FlaskClient):
    assert client.get("/webhooks/postmark").status_code == 405


def test_webhooks_need_no_csrf_token_and_are_not_rate_limited(env: dict[str, str], keys: Keys):
    app = make_app({**env, "RATELIMIT_ENABLED": "true"})
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    assert client.post("/subscribe", data={"email": ANN, "consent": "yes"}).status_code == 400
    webhook = Webhook("postmark", client, keys)
    answers = [webhook.send("hard", n, email=f"n{n}@example.net").status_code for n in range(40)]
    assert answers == [200] * 40  # more than the signup limit of 30 a minute
    with app.app_context():
        db.engine.dispose()


def test_a_large_notification_is_accepted(app: Flask, ann: State, keys: Keys, client: FlaskClient):
    """Beyond the 16 KiB signup limit: SES notices carry the mail's headers."""
    notice = _ses_notice("hard", ANN)
    notice["mail"]["headers"] += [{"name": f"X-Filler-{i}", "value": "x" * 200} for i in range(100)]
    body = json.dumps(sns_message(keys, json.dumps(notice), "large-1")).encode()
    assert len(body) > 20 * 1024
    response = Webhook("ses", client, keys).post(body, {})
    assert response.status_code == 200 and state(app).status == "bounced"


def test_signing_up_again_after_soft_bounces_starts_the_count_afresh(
    app: Flask, ann: State, keys: Keys, client: FlaskClient
):
    webhook = Webhook("postmark", client, keys)
    for n in range(5):
        webhook.send("soft", n)
    assert state(app).status == "bounced"
    assert api_signup(client, ANN, first_name="Ann").status_code == 202
    assert state(app).status == "pending"  # back only through the confirmation link
    with app.app_context():
        person = db.session.scalar(select(Subscriber))
        confirm(for_app(app), person.id, RequestMeta("test", None, None, None))
    assert state(app).status == "active"
    webhook.send("soft", 5)
    assert state(app).status == "active"


# --- never a 500 --------------------------------------------------------------------------

ODD_BODIES = {
    "postmark": [
        b"[]",
        b'"text"',
        b'{"RecordType": "Bounce", "ID": true, "Email": "a@b.c"}',
        b'{"RecordType": "Bounce", "ID": 7}',
        b'{"RecordType": "Bounce", "ID": 7, "Email": 5}',
        b"\xff\xfe",
        b'{"RecordType": "Bounce", "ID": 7, "Email": "' + b"a" * 400 + b'"}',
    ],
    "sendgrid": [
        b"{}",
        b"[1]",
        b'[{"event": "bounce"}]',
        b'[{"event": "spamreport", "sg_event_id": 5}]',
        b'[{"event": "bounce", "sg_event_id": "x", "email": null}]',
    ],
}


@pytest.mark.parametrize(
    "provider,body", [(p, b) for p, bodies in ODD_BODIES.items() for b in bodies]
)
def test_odd_but_authentic_bodies_are_400(
    app: Flask, keys: Keys, client: FlaskClient, provider: str, body: bytes
):
    headers = (
        {"X-Postmark-Token": POSTMARK_TOKEN}
        if provider == "postmark"
        else sendgrid_headers(keys, body)
    )
    assert Webhook(provider, client, keys).post(body, headers).status_code == 400


# --- settings -------------------------------------------------------------------------------


@pytest.fixture
def base_env(tmp_path: Path) -> dict[str, str]:
    return {"INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": SECRET}


@pytest.mark.parametrize(
    "name,value",
    [
        ("SES_TOPIC_ARN", "my-topic"),
        ("SES_TOPIC_ARN", "arn:aws:sqs:us-east-1:123456789012:queue"),
        ("SES_SNS_CERT_FILE", "/nonexistent/cert.pem"),
        ("POSTMARK_WEBHOOK_TOKEN", "short"),
        ("POSTMARK_WEBHOOK_TOKEN", "a token with spaces in it"),
        ("MAILGUN_WEBHOOK_SIGNING_KEY", "key-123"),
        ("SENDGRID_WEBHOOK_PUBLIC_KEY", "not base64 at all!"),
        ("SENDGRID_WEBHOOK_PUBLIC_KEY", base64.b64encode(b"random bytes").decode()),
    ],
)
def test_a_malformed_webhook_setting_is_named(base_env: dict[str, str], name: str, value: str):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**base_env, name: value})
    assert caught.value.name == name


def test_a_certificate_file_that_is_no_certificate_is_named(
    base_env: dict[str, str], tmp_path: Path
):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**base_env, "SES_SNS_CERT_FILE": str(junk)})
    assert caught.value.name == "SES_SNS_CERT_FILE"


def test_the_sendgrid_key_may_be_pem_but_must_be_p256(base_env: dict[str, str], keys: Keys):
    pem = (
        keys.sendgrid.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    settings = Settings.from_env({**base_env, "SENDGRID_WEBHOOK_PUBLIC_KEY": pem})
    assert settings.sendgrid_webhook_public_key == pem.strip()
    rsa_pem = (
        keys.sns.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(SettingsError):
        Settings.from_env({**base_env, "SENDGRID_WEBHOOK_PUBLIC_KEY": rsa_pem})


def test_webhooks_are_off_unless_configured(base_env: dict[str, str]):
    settings = Settings.from_env(base_env)
    assert settings.ses_topic_arn is None and settings.postmark_webhook_token is None
    assert settings.mailgun_webhook_signing_key is None
    assert settings.sendgrid_webhook_public_key is None


def test_lists_where_words_belong_are_no_500(client: FlaskClient, keys: Keys):
    """Values the parsers look up in tables, given as lists and objects (unhashable)."""
    topic = TOPIC.encode()
    ses_envelopes = [
        b'{"Type": "Notification", "TopicArn": "' + topic + b'", "SignatureVersion": [1]}',
        b'{"Type": [], "TopicArn": "' + topic + b'", "SignatureVersion": "1", "Signature": "AA=="}',
    ]
    for body in ses_envelopes:
        assert Webhook("ses", client, keys).post(body, {}).status_code == 403
    notice = _ses_notice("hard", "someone@example.net")
    notice["bounce"]["bounceType"] = ["Permanent"]
    envelope = sns_message(keys, json.dumps(notice), "unhashable-1")
    assert Webhook("ses", client, keys).post(json.dumps(envelope).encode(), {}).status_code == 200
    record = {**POSTMARK_BOUNCE, "Type": {"HardBounce": 1}, "Email": "someone@example.net"}
    response = Webhook("postmark", client, keys).post(
        json.dumps(record).encode(), {"X-Postmark-Token": POSTMARK_TOKEN}
    )
    assert response.status_code == 200
    data = {**MAILGUN_FAILED, "severity": ["permanent"], "recipient": "someone@example.net"}
    body = json.dumps({"signature": mailgun_signature(MAILGUN_KEY), "event-data": data})
    assert Webhook("mailgun", client, keys).post(body.encode(), {}).status_code == 200


# --- bodies nested too deep for the parser ---------------------------------------------------

DEEP = b"[" * 14_000


@pytest.mark.parametrize("provider", ["postmark", "sendgrid"])
def test_where_the_proof_is_outside_the_body_it_is_checked_before_parsing(
    client: FlaskClient, keys: Keys, provider: str
):
    headers = (
        {"X-Postmark-Token": "not-the-postmark-token"}
        if provider == "postmark"
        else sendgrid_headers(keys, DEEP, "bad")
    )
    assert Webhook(provider, client, keys).post(DEEP, headers).status_code == 403


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_body_nested_too_deep_is_400(client: FlaskClient, keys: Keys, provider: str):
    # Mailgun and SNS sign fields inside the body: it is parsed first, and safely.
    headers = {
        "postmark": {"X-Postmark-Token": POSTMARK_TOKEN},
        "sendgrid": sendgrid_headers(keys, DEEP),
    }.get(provider, {})
    response = Webhook(provider, client, keys).post(DEEP, headers)
    assert response.status_code == 400
    assert "JSON" in response.get_json()["error"]

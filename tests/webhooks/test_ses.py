"""Amazon SES through SNS: message signatures, topics, certificates, subscription messages."""

from __future__ import annotations

import json
import logging

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.core.extensions import db
from service.webhooks import ses
from tests.conftest import make_app
from tests.webhooks.payloads import (
    ANN,
    CERT_URL,
    TOPIC,
    Keys,
    State,
    Webhook,
    _ses_notice,
    event_rows,
    sns_message,
    state,
)

# --- SES through SNS -----------------------------------------------------------------------


def test_ses_signature_version_2_with_a_subject_verifies(
    app: Flask, ann: State, keys: Keys, client: FlaskClient
):
    envelope = sns_message(
        keys, json.dumps(_ses_notice("hard", ANN)), "v2-1", version="2", Subject="Bounce"
    )
    response = Webhook("ses", client, keys).post(json.dumps(envelope).encode(), {})
    assert response.status_code == 200 and state(app).status == "bounced"


def test_ses_a_changed_message_no_longer_verifies(
    app: Flask, ann: State, keys: Keys, client: FlaskClient
):
    envelope = sns_message(keys, json.dumps(_ses_notice("soft", ANN)), "tampered-1")
    envelope["Message"] = json.dumps(_ses_notice("complaint", ANN))
    assert Webhook("ses", client, keys).post(json.dumps(envelope).encode(), {}).status_code == 403
    assert state(app) == ann


@pytest.mark.parametrize(
    "field,value",
    [
        ("TopicArn", "arn:aws:sns:us-west-2:999999999999:someone-elses-topic"),
        ("SigningCertURL", "https://sns.s3.amazonaws.com/cert.pem"),  # an S3 bucket named sns
        ("SigningCertURL", "http://sns.us-west-2.amazonaws.com/cert.pem"),
        ("SigningCertURL", "https://sns.us-west-2.amazonaws.com.evil.example/cert.pem"),
        ("SigningCertURL", "https://evil.example/sns.us-west-2.amazonaws.com/cert.pem"),
        ("SignatureVersion", "3"),
    ],
)
def test_ses_refuses_other_topics_and_certificate_hosts(
    app: Flask, ann: State, keys: Keys, client: FlaskClient, field: str, value: str
):
    """Signed correctly with a key whose certificate the test trusts, but from the wrong
    place: still 403 (the certificate file never excuses a foreign URL or topic)."""
    envelope = sns_message(keys, json.dumps(_ses_notice("hard", ANN)), "x-1", **{field: value})
    assert Webhook("ses", client, keys).post(json.dumps(envelope).encode(), {}).status_code == 403
    assert state(app) == ann


def test_ses_subscription_confirmation_is_logged_not_followed(
    app: Flask, keys: Keys, client: FlaskClient, caplog: pytest.LogCaptureFixture, monkeypatch
):
    monkeypatch.setattr(ses, "fetch", lambda url: pytest.fail(f"fetched {url}"))
    subscribe_url = (
        "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + TOPIC
    )
    envelope = sns_message(
        keys,
        f"You have chosen to subscribe to the topic {TOPIC}.\nTo confirm the subscription, "
        "visit the SubscribeURL included in this message.",
        "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        Type="SubscriptionConfirmation",
        Token="2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3",
        SubscribeURL=subscribe_url,
    )
    with caplog.at_level(logging.WARNING):
        response = Webhook("ses", client, keys).post(json.dumps(envelope).encode(), {})
    assert response.status_code == 200 and response.get_json() == {"accepted": 0}
    assert subscribe_url in caplog.text
    assert event_rows(app) == []


def test_ses_confirmation_with_a_bad_signature_is_403(app: Flask, keys: Keys, client: FlaskClient):
    envelope = sns_message(
        keys, "confirm", "c-1", "bad", Type="SubscriptionConfirmation", Token="t", SubscribeURL="u"
    )
    assert Webhook("ses", client, keys).post(json.dumps(envelope).encode(), {}).status_code == 403


def test_ses_without_a_certificate_file_downloads_the_certificate_once(
    env: dict[str, str], keys: Keys, monkeypatch
):
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return keys.sns_cert.read_bytes()

    monkeypatch.setattr(ses, "fetch", fetch)
    ses.downloaded.cache_clear()
    app = make_app({**env, "SES_SNS_CERT_FILE": ""})
    webhook = Webhook("ses", app.test_client(), keys)
    try:
        for n in range(3):
            assert webhook.send("hard", n, email="someone@example.net").status_code == 200
    finally:
        ses.downloaded.cache_clear()
        with app.app_context():
            db.engine.dispose()
    assert fetched == [CERT_URL]


def test_ses_an_unreachable_certificate_is_503_so_sns_retries(
    env: dict[str, str], keys: Keys, monkeypatch
):
    def fetch(url: str) -> bytes:
        raise ses.Unavailable("no route to host")

    monkeypatch.setattr(ses, "fetch", fetch)
    ses.downloaded.cache_clear()
    app = make_app({**env, "SES_SNS_CERT_FILE": ""})
    assert Webhook("ses", app.test_client(), keys).send("hard").status_code == 503
    assert event_rows(app) == []
    with app.app_context():
        db.engine.dispose()


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        "[]",
        '{"notificationType": "Bounce"}',
        '{"notificationType": "Complaint",'
        ' "complaint": {"complainedRecipients": [{"emailAddress": null}]}}',
        '{"notificationType": "Bounce", "bounce": {"bouncedRecipients": ["a@b.c"]}}',
    ],
)
def test_odd_ses_notices_are_400(client: FlaskClient, keys: Keys, message: str):
    envelope = sns_message(keys, message, "odd-1")
    assert Webhook("ses", client, keys).post(json.dumps(envelope).encode(), {}).status_code == 400


@pytest.mark.parametrize(
    "body",
    [b"[]", b'{"Type": "Notification"}', b'{"Type": 5, "TopicArn": "' + TOPIC.encode() + b'"}'],
)
def test_odd_sns_envelopes_are_refused(client: FlaskClient, keys: Keys, body: bytes):
    assert Webhook("ses", client, keys).post(body, {}).status_code in (400, 403)


DEEP = b"[" * 14_000


def test_a_signed_ses_notice_nested_too_deep_is_400(client: FlaskClient, keys: Keys):
    envelope = sns_message(keys, DEEP.decode(), "deep-1")
    assert Webhook("ses", client, keys).post(json.dumps(envelope).encode(), {}).status_code == 400

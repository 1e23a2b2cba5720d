"""Bounce and complaint webhooks of SES (via SNS), Postmark, Mailgun and SendGrid.

The payloads are the providers' documented examples, addressed to a subscriber signed up
first; each request is signed here with keys made for the test, as the provider would.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from service.confirm import confirm
from service.consent import RequestMeta
from service.extensions import db
from service.models import EmailStatus, ScheduledEmail, Subscriber, WebhookEvent
from service.settings import Settings, SettingsError
from service.webhooks import ses
from tests.conftest import SECRET, make_app
from tests.helpers import api_signup, dispatch_inline

ANN = "ann@example.com"
TOPIC = "arn:aws:sns:us-west-2:123456789012:ses-bounces"
CERT_URL = "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
POSTMARK_TOKEN = "postmark-" + "t" * 24
MAILGUN_KEY = "key-" + "3" * 32
PROVIDERS = ["ses", "postmark", "mailgun", "sendgrid"]


# --- keys, made once --------------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    sns: rsa.RSAPrivateKey
    sns_cert: Path
    sendgrid: ec.EllipticCurvePrivateKey
    sendgrid_public: str  # base64 DER, as SendGrid's dashboard shows it
    intruder_rsa: rsa.RSAPrivateKey
    intruder_ec: ec.EllipticCurvePrivateKey


def self_signed(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    sns = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = tmp_path_factory.mktemp("sns") / "sns-signing.pem"
    cert.write_bytes(self_signed(sns).public_bytes(serialization.Encoding.PEM))
    sendgrid = ec.generate_private_key(ec.SECP256R1())
    der = sendgrid.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return Keys(
        sns=sns,
        sns_cert=cert,
        sendgrid=sendgrid,
        sendgrid_public=base64.b64encode(der).decode(),
        intruder_rsa=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        intruder_ec=ec.generate_private_key(ec.SECP256R1()),
    )


@pytest.fixture
def env(env: dict[str, str], keys: Keys) -> dict[str, str]:
    return {
        **env,
        "SES_TOPIC_ARN": TOPIC,
        "SES_SNS_CERT_FILE": str(keys.sns_cert),
        "POSTMARK_WEBHOOK_TOKEN": POSTMARK_TOKEN,
        "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY,
        "SENDGRID_WEBHOOK_PUBLIC_KEY": keys.sendgrid_public,
    }


# --- the providers' documented payloads -------------------------------------------------

SES_BOUNCE = {  # "Bounce notification with a DSN", Amazon SES developer guide
    "notificationType": "Bounce",
    "bounce": {
        "bounceType": "Permanent",
        "reportingMTA": "dns; email.example.com",
        "bouncedRecipients": [
            {
                "emailAddress": "jane@example.com",
                "status": "5.1.1",
                "action": "failed",
                "diagnosticCode": "smtp; 550 5.1.1 <jane@example.com>... User",
            }
        ],
        "bounceSubType": "General",
        "timestamp": "2016-01-27T14:59:38.237Z",
        "feedbackId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000",
        "remoteMtaIp": "127.0.2.0",
    },
    "mail": {
        "timestamp": "2016-01-27T14:59:38.237Z",
        "source": "john@example.com",
        "sourceArn": "arn:aws:ses:us-east-1:888888888888:identity/example.com",
        "sourceIp": "127.0.3.0",
        "sendingAccountId": "123456789012",
        "messageId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000",
        "destination": ["jane@example.com", "mary@example.com", "richard@example.com"],
        "headersTruncated": False,
        "headers": [
            {"name": "From", "value": '"John Doe" <john@example.com>'},
            {"name": "To", "value": '"Jane Doe" <jane@example.com>'},
            {"name": "Message-ID", "value": "custom-message-ID"},
            {"name": "Subject", "value": "Hello"},
        ],
        "commonHeaders": {
            "from": ["John Doe <john@example.com>"],
            "date": "Wed, 27 Jan 2016 14:05:45 +0000",
            "to": ["Jane Doe <jane@example.com>"],
            "messageId": "custom-message-ID",
            "subject": "Hello",
        },
    },
}
SES_COMPLAINT = {  # "Complaint notification with a feedback report"
    "notificationType": "Complaint",
    "complaint": {
        "userAgent": "AnyCompany Feedback Loop (V0.01)",
        "complainedRecipients": [{"emailAddress": "richard@example.com"}],
        "complaintFeedbackType": "abuse",
        "arrivalDate": "2016-01-27T14:59:38.237Z",
        "timestamp": "2016-01-27T14:59:38.237Z",
        "feedbackId": "000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000",
    },
    "mail": SES_BOUNCE["mail"],
}
POSTMARK_BOUNCE = {  # Postmark bounce webhook example
    "RecordType": "Bounce",
    "MessageStream": "outbound",
    "ID": 4323372036854775807,
    "Type": "HardBounce",
    "TypeCode": 1,
    "Name": "Hard bounce",
    "Tag": "Test",
    "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
    "Metadata": {"a_key": "a_value", "b_key": "b_value"},
    "ServerID": 23,
    "Description": "The server was unable to deliver your message "
    "(ex: unknown user, mailbox not found).",
    "Details": "Test bounce details",
    "Email": "john@example.com",
    "From": "sender@example.com",
    "BouncedAt": "2019-11-05T16:33:54.9070259Z",
    "DumpAvailable": True,
    "Inactive": True,
    "CanActivate": True,
    "Subject": "Test subject",
    "Content": "<Full dump of bounce>",
}
POSTMARK_COMPLAINT = {  # Postmark spam complaint webhook example
    "RecordType": "SpamComplaint",
    "MessageStream": "outbound",
    "ID": 42,
    "Type": "SpamComplaint",
    "TypeCode": 512,
    "Name": "Spam complaint",
    "Tag": "Test",
    "MessageID": "00000000-0000-0000-0000-000000000000",
    "Metadata": {"a_key": "a_value", "b_key": "b_value"},
    "ServerID": 1234,
    "Description": "The subscriber explicitly marked this email as spam.",
    "Details": "Test spam complaint details",
    "Email": "john@example.com",
    "From": "sender@example.com",
    "BouncedAt": "2019-11-05T16:33:54.9070259Z",
    "DumpAvailable": True,
    "Inactive": True,
    "CanActivate": False,
    "Subject": "Test subject",
    "Content": "<Abuse report dump>",
}
MAILGUN_FAILED = {  # Mailgun "failed" (permanent) event-data example
    "id": "G9Bn5sl1TC6nu79C8C0bwg",
    "timestamp": 1521233195.375624,
    "log-level": "error",
    "event": "failed",
    "severity": "permanent",
    "reason": "suppress-bounce",
    "envelope": {
        "sender": "bob@sandbox.mailgun.org",
        "transport": "smtp",
        "targets": "alice@example.com",
    },
    "flags": {"is-routed": False, "is-authenticated": True, "is-system-test": False},
    "delivery-status": {
        "attempt-no": 1,
        "message": "",
        "code": 605,
        "description": "Not delivering to previously bounced address",
        "session-seconds": 0.0,
    },
    "message": {
        "headers": {
            "to": "Alice <alice@example.com>",
            "message-id": "20130503192659.13651.20287@sandbox.mailgun.org",
            "from": "Bob <bob@sandbox.mailgun.org>",
            "subject": "Test permanent_fail webhook",
        },
        "attachments": [],
        "size": 111,
    },
    "recipient": "alice@example.com",
    "recipient-domain": "example.com",
    "campaigns": [],
    "tags": ["my_tag_1", "my_tag_2"],
    "user-variables": {"my_var_1": "Mailgun Variable #1", "my-var-2": "awesome"},
}
MAILGUN_COMPLAINED = {  # Mailgun "complained" event-data example
    "id": "-Agny091SquKnsrW2NEKUA",
    "timestamp": 1521233123.501324,
    "log-level": "warn",
    "event": "complained",
    "envelope": {"sending-ip": "173.193.210.33"},
    "flags": {"is-test-mode": False},
    "message": MAILGUN_FAILED["message"],
    "recipient": "alice@example.com",
    "tags": ["my_tag_1", "my_tag_2"],
    "campaigns": [],
    "user-variables": {"my_var_1": "Mailgun Variable #1"},
}
SENDGRID_EVENTS = [  # SendGrid event webhook example batch
    {
        "email": "example@test.com",
        "timestamp": 1513299569,
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "event": "bounce",
        "category": "cat facts",
        "sg_event_id": "6g4ZI7SA-xmRDv57GoPIPw==",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "reason": "500 unknown recipient",
        "status": "5.0.0",
        "type": "bounce",
    },
    {
        "email": "example@test.com",
        "timestamp": 1513299569,
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "event": "spamreport",
        "category": "cat facts",
        "sg_event_id": "37nvH5QBz858KGVYCM4uOA==",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
    },
    {
        "email": "example@test.com",
        "timestamp": 1513299569,
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "event": "delivered",
        "category": "cat facts",
        "sg_event_id": "rWVYmVk90MjZJ9iohOBa3w==",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "response": "250 OK",
    },
]


# --- building each provider's request ----------------------------------------------------

Kind = str  # "hard" | "soft" | "complaint"
Signing = str  # "good" | "bad" (the wrong key) | "none"


def _ses_notice(kind: Kind, email: str) -> dict:
    notice = copy.deepcopy(SES_COMPLAINT if kind == "complaint" else SES_BOUNCE)
    if kind == "complaint":
        notice["complaint"]["complainedRecipients"][0]["emailAddress"] = email
    else:
        recipient = notice["bounce"]["bouncedRecipients"][0]
        recipient["emailAddress"] = email
        recipient["diagnosticCode"] = f"smtp; 550 5.1.1 <{email}>... User"
        if kind == "soft":
            notice["bounce"].update(bounceType="Transient", bounceSubType="MailboxFull")
    return notice


def sns_string_to_sign(message: dict) -> bytes:
    if message["Type"] == "Notification":
        fields = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        fields = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join(f"{f}\n{message[f]}\n" for f in fields if f in message).encode()


def sns_message(
    keys: Keys,
    message: str,
    message_id: str,
    signing: Signing = "good",
    *,
    version: str = "1",
    **fields: str,
) -> dict:
    envelope = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": TOPIC,
        "Message": message,
        "Timestamp": "2016-01-27T14:59:39.012Z",
        "SignatureVersion": version,
        "SigningCertURL": CERT_URL,
        "UnsubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe",
        **fields,
    }
    if signing != "none":
        key = keys.sns if signing == "good" else keys.intruder_rsa
        digest = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = key.sign(sns_string_to_sign(envelope), padding.PKCS1v15(), digest)
        envelope["Signature"] = base64.b64encode(signature).decode()
    else:
        del envelope["SignatureVersion"]
    return envelope


def ses_request(keys: Keys, kind: Kind, n: int, email: str, signing: Signing):
    message = json.dumps(_ses_notice(kind, email))
    envelope = sns_message(keys, message, f"22b80b92-fdea-4c2c-8f9d-{n:012d}", signing)
    return json.dumps(envelope).encode(), {"x-amz-sns-message-type": "Notification"}


def postmark_request(keys: Keys, kind: Kind, n: int, email: str, signing: Signing):
    record = copy.deepcopy(POSTMARK_COMPLAINT if kind == "complaint" else POSTMARK_BOUNCE)
    record.update(ID=record["ID"] - n, Email=email)
    if kind == "soft":
        record.update(Type="SoftBounce", TypeCode=4096, Name="Soft bounce")
    headers = {}
    if signing != "none":
        password = POSTMARK_TOKEN if signing == "good" else "not-the-token-at-all"
        basic = base64.b64encode(f"postmark:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {basic}"
    return json.dumps(record).encode(), headers


def mailgun_signature(key: str, timestamp: int | None = None, token: str | None = None) -> dict:
    timestamp = timestamp or int(datetime.now(UTC).timestamp())
    token = token or secrets.token_hex(25)
    digest = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {"timestamp": str(timestamp), "token": token, "signature": digest}


def mailgun_request(keys: Keys, kind: Kind, n: int, email: str, signing: Signing):
    data = copy.deepcopy(MAILGUN_COMPLAINED if kind == "complaint" else MAILGUN_FAILED)
    data.update(id=f"{data['id']}-{n}", recipient=email)
    if kind == "soft":
        data.update(severity="temporary", reason="generic")
        data["delivery-status"].update(code=452, description="4.2.2 mailbox over quota")
    payload: dict[str, Any] = {"event-data": data}
    if signing != "none":
        payload["signature"] = mailgun_signature(
            MAILGUN_KEY if signing == "good" else "key-not-the-signing-key"
        )
    return json.dumps(payload).encode(), {}


def sendgrid_headers(keys: Keys, body: bytes, signing: Signing = "good", timestamp=None):
    if signing == "none":
        return {}
    stamp = str(timestamp or int(datetime.now(UTC).timestamp()))
    key = keys.sendgrid if signing == "good" else keys.intruder_ec
    signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
    }


def sendgrid_request(keys: Keys, kind: Kind, n: int, email: str, signing: Signing):
    event = copy.deepcopy(SENDGRID_EVENTS[1 if kind == "complaint" else 0])
    event.update(email=email, sg_event_id=f"{event['sg_event_id']}-{n}")
    if kind == "soft":
        event.update(type="blocked", reason="550 blocked by policy", status="4.0.0")
    body = json.dumps([event, SENDGRID_EVENTS[2]]).encode()  # plus a delivery, ignored
    return body, sendgrid_headers(keys, body, signing)


BUILDERS: dict[str, Callable] = {
    "ses": ses_request,
    "postmark": postmark_request,
    "mailgun": mailgun_request,
    "sendgrid": sendgrid_request,
}


@dataclass
class Webhook:
    """Posts one provider's requests to the app."""

    name: str
    client: FlaskClient
    keys: Keys

    def request(self, kind: Kind, n: int = 0, email: str = ANN, signing: Signing = "good"):
        return BUILDERS[self.name](self.keys, kind, n, email, signing)

    def post(self, body: bytes, headers: dict[str, str]):
        # SNS posts its JSON as text/plain; the others say application/json.
        content_type = "text/plain; charset=UTF-8" if self.name == "ses" else "application/json"
        return self.client.post(
            f"/webhooks/{self.name}", data=body, headers=headers, content_type=content_type
        )

    def send(self, kind: Kind, n: int = 0, email: str = ANN, signing: Signing = "good"):
        return self.post(*self.request(kind, n, email, signing))


@pytest.fixture(params=PROVIDERS)
def webhook(request: pytest.FixtureRequest, client: FlaskClient, keys: Keys) -> Webhook:
    return Webhook(request.param, client, keys)


# --- the subscriber's state ---------------------------------------------------------------


@dataclass(frozen=True)
class State:
    status: str
    open_emails: int
    cancelled_emails: int
    events: int


@pytest.fixture
def ann(app: Flask, client: FlaskClient) -> State:
    """Ann signed up and got the guide; the next step of the drip waits."""
    assert api_signup(client, ANN, first_name="Ann").status_code == 202
    assert dispatch_inline(app) == ["sent"]
    before = state(app)
    assert before == State("active", 1, 0, 0)
    return before


def state(app: Flask, email: str = ANN) -> State:
    with app.app_context():
        subscriber = db.session.scalars(select(Subscriber).where(Subscriber.email == email)).one()
        statuses = list(
            db.session.scalars(
                select(ScheduledEmail.status).where(ScheduledEmail.subscriber_id == subscriber.id)
            )
        )
        events = len(db.session.scalars(select(WebhookEvent.id)).all())
        return State(
            status=subscriber.status,
            open_emails=sum(s in EmailStatus.OPEN for s in statuses),
            cancelled_emails=statuses.count(EmailStatus.CANCELLED),
            events=events,
        )


def event_rows(app: Flask) -> list[WebhookEvent]:
    with app.app_context():
        rows = list(db.session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))
        db.session.expunge_all()
        return rows


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


# --- Postmark, Mailgun, SendGrid specifics ---------------------------------------------------


def test_postmark_accepts_the_token_header_too(app: Flask, ann: State, keys: Keys, client):
    body, _ = postmark_request(keys, "complaint", 0, ANN, "none")
    response = Webhook("postmark", client, keys).post(body, {"X-Postmark-Token": POSTMARK_TOKEN})
    assert response.status_code == 200 and state(app).status == "complained"


def test_mailgun_refuses_an_old_signature(app: Flask, ann: State, keys: Keys, client):
    body, headers = mailgun_request(keys, "complaint", 0, ANN, "good")
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=6)):
        assert Webhook("mailgun", client, keys).post(body, headers).status_code == 403
    assert state(app) == ann


def test_mailgun_refuses_a_signature_token_used_for_another_event(
    app: Flask, ann: State, keys: Keys, client
):
    """Mailgun signs the timestamp and token, not the event: a captured signature replayed
    with a forged complaint inside must not pass."""
    signature = mailgun_signature(MAILGUN_KEY)
    delivered = {**MAILGUN_FAILED, "event": "delivered", "id": "delivered-1", "recipient": ANN}
    webhook = Webhook("mailgun", client, keys)
    first = webhook.post(json.dumps({"signature": signature, "event-data": delivered}).encode(), {})
    assert first.status_code == 200
    forged = {**MAILGUN_COMPLAINED, "id": "forged-1", "recipient": ANN}
    second = webhook.post(json.dumps({"signature": signature, "event-data": forged}).encode(), {})
    assert second.status_code == 403
    assert state(app) == State("active", 1, 0, 1)


def test_sendgrid_refuses_an_old_signature(app: Flask, ann: State, keys: Keys, client):
    body, _ = sendgrid_request(keys, "complaint", 0, ANN, "none")
    stale = int((datetime.now(UTC) - timedelta(minutes=6)).timestamp())
    response = Webhook("sendgrid", client, keys).post(
        body, sendgrid_headers(keys, body, "good", stale)
    )
    assert response.status_code == 403
    assert state(app) == ann


def test_sendgrid_a_changed_body_no_longer_verifies(app: Flask, ann: State, keys: Keys, client):
    body, headers = sendgrid_request(keys, "soft", 0, ANN, "good")
    changed = body.replace(b'"blocked"', b'"bounce"')
    assert changed != body
    assert Webhook("sendgrid", client, keys).post(changed, headers).status_code == 403
    assert state(app) == ann


def test_sendgrid_applies_every_event_of_a_batch(app: Flask, ann: State, keys: Keys, client):
    batch = copy.deepcopy(SENDGRID_EVENTS)
    batch[0]["email"] = "stranger@example.net"
    batch[1]["email"] = ANN
    body = json.dumps(batch).encode()
    response = Webhook("sendgrid", client, keys).post(body, sendgrid_headers(keys, body))
    assert response.get_json() == {"accepted": 2}  # the delivery is not an event to keep
    assert state(app) == State("complained", 0, 1, 2)


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
        confirm(person.id, RequestMeta("test", None, None, None))
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


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'{"signature": "x"}',
        b'{"signature": {"timestamp": 1, "token": null, "signature": []}}',
    ],
)
def test_odd_mailgun_bodies_are_refused(client: FlaskClient, keys: Keys, body: bytes):
    assert Webhook("mailgun", client, keys).post(body, {}).status_code in (400, 403)


def test_odd_mailgun_event_data_is_400(client: FlaskClient, keys: Keys):
    webhook = Webhook("mailgun", client, keys)
    for data in ["text", {"event": "failed"}, {"event": "failed", "id": "x", "recipient": []}]:
        body = json.dumps({"signature": mailgun_signature(MAILGUN_KEY), "event-data": data})
        assert webhook.post(body.encode(), {}).status_code == 400, data


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


def test_a_signed_ses_notice_nested_too_deep_is_400(client: FlaskClient, keys: Keys):
    envelope = sns_message(keys, DEEP.decode(), "deep-1")
    assert Webhook("ses", client, keys).post(json.dumps(envelope).encode(), {}).status_code == 400

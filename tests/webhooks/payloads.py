"""The providers' documented payloads, signed here as each provider signs them, and the
subscriber's state as the webhooks leave it.

The payloads are the providers' documented examples, addressed to a subscriber signed up
first; each request is signed with keys made for the test, as the provider would."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from service.core.extensions import db
from service.core.models import EmailStatus, ScheduledEmail, Subscriber, WebhookEvent

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


def _ses_notice(kind: Kind, email: str, message_id: str | None = None) -> dict:
    notice = copy.deepcopy(SES_COMPLAINT if kind == "complaint" else SES_BOUNCE)
    if message_id is not None:
        notice["mail"]["commonHeaders"]["messageId"] = message_id
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


def ses_request(keys: Keys, kind: Kind, n: int, email: str, signing: Signing, message_id=None):
    message = json.dumps(_ses_notice(kind, email, message_id))
    envelope = sns_message(keys, message, f"22b80b92-fdea-4c2c-8f9d-{n:012d}", signing)
    return json.dumps(envelope).encode(), {"x-amz-sns-message-type": "Notification"}


def postmark_request(
    keys: Keys, kind: Kind, n: int, email: str, signing: Signing, message_id=None
):  # Postmark quotes its own MessageID, never the email's header: message_id is not sent
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


def mailgun_request(keys: Keys, kind: Kind, n: int, email: str, signing: Signing, message_id=None):
    data = copy.deepcopy(MAILGUN_COMPLAINED if kind == "complaint" else MAILGUN_FAILED)
    if message_id is not None:  # Mailgun quotes it without the angle brackets
        data["message"]["headers"]["message-id"] = message_id.strip("<>")
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


def sendgrid_request(keys: Keys, kind: Kind, n: int, email: str, signing: Signing, message_id=None):
    event = copy.deepcopy(SENDGRID_EVENTS[1 if kind == "complaint" else 0])
    if message_id is not None:
        event["smtp-id"] = message_id
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

    def request(self, kind: Kind, n: int = 0, email: str = ANN, signing: Signing = "good", **about):
        return BUILDERS[self.name](self.keys, kind, n, email, signing, **about)

    def post(self, body: bytes, headers: dict[str, str]):
        # SNS posts its JSON as text/plain; the others say application/json.
        content_type = "text/plain; charset=UTF-8" if self.name == "ses" else "application/json"
        return self.client.post(
            f"/webhooks/{self.name}", data=body, headers=headers, content_type=content_type
        )

    def send(self, kind: Kind, n: int = 0, email: str = ANN, signing: Signing = "good", **about):
        """`message_id=`: the Message-ID of the email reported on, where the provider quotes it."""
        return self.post(*self.request(kind, n, email, signing, **about))


# --- the subscriber's state ---------------------------------------------------------------


@dataclass(frozen=True)
class State:
    status: str
    open_emails: int
    cancelled_emails: int
    events: int


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

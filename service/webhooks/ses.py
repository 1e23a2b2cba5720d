"""Amazon SES through SNS: verify the SNS message signature, read SES bounces and complaints."""

from __future__ import annotations

import base64
import binascii
import http.client
import logging
import re
from datetime import datetime
from functools import lru_cache
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from werkzeug.datastructures import Headers

from ..core.models import EventKind
from ..core.settings import Settings
from .normalized import (
    Event,
    Forbidden,
    Malformed,
    Unavailable,
    load_json,
    load_object,
    parse_time,
    text,
)

NAME = "ses"
log = logging.getLogger(__name__)

# Only SNS's own hosts may name the certificate. The region part is strict on purpose: a
# looser pattern such as sns\.[a-z0-9-]+\.amazonaws\.com also matches an S3 bucket host
# (sns.s3.amazonaws.com) that anyone can fill with a certificate of their own.
CERT_HOST = re.compile(r"sns\.[a-z]{2}(?:-gov)?-[a-z]+-\d{1,2}\.amazonaws\.com(?:\.cn)?")
FETCH_TIMEOUT = 3  # seconds
MAX_CERT_BYTES = 64 * 1024
SIGNATURE_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
# The fields signed, in this order, per message type (SNS's "string to sign").
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
SIGNED_FIELDS["UnsubscribeConfirmation"] = SIGNED_FIELDS["SubscriptionConfirmation"]
OPTIONAL_FIELDS = {"Subject"}
BOUNCE_KINDS = {
    "Permanent": EventKind.HARD_BOUNCE,
    "Transient": EventKind.SOFT_BOUNCE,
    # SES could not tell: counted like a soft bounce, so that five of them still suppress.
    "Undetermined": EventKind.SOFT_BOUNCE,
}


class Ses:
    """Amazon SES through SNS: a Provider (see provider.py)."""

    name = NAME

    def configured(self, settings: Settings) -> bool:
        return settings.ses_topic_arn is not None

    def receive(
        self, body: bytes, headers: Headers, settings: Settings, now: datetime
    ) -> list[Event]:
        message = load_object(body, "an SNS message")
        verify(message, settings, now)
        kind = message["Type"]
        if kind == "SubscriptionConfirmation":
            # Not followed automatically: confirming starts the flow of a topic's messages into
            # this service, so the operator does it knowingly (and may have no route out anyway).
            log.warning(
                "SNS asks to confirm the subscription to %s: open %s to confirm it",
                message["TopicArn"],
                message.get("SubscribeURL"),
            )
            return []
        if kind == "UnsubscribeConfirmation":
            log.warning("SNS reports this endpoint unsubscribed from %s", message["TopicArn"])
            return []
        return _events(message)


def verify(message: dict, settings: Settings, now: datetime) -> None:
    """Raise Forbidden unless SNS signed this message for the configured topic."""
    if message.get("TopicArn") != settings.ses_topic_arn:
        raise Forbidden("the message is not from the configured topic")
    algorithm = SIGNATURE_HASHES.get(text(message.get("SignatureVersion")) or "")
    signature = text(message.get("Signature"))
    if algorithm is None or signature is None:
        raise Forbidden("the message is not signed")
    try:
        signature_bytes = base64.b64decode(signature, validate=True)
    except binascii.Error:
        raise Forbidden("the signature is not base64") from None
    signed = string_to_sign(message)
    key = certificate(message.get("SigningCertURL"), settings, now).public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise Forbidden("the signing certificate holds no RSA key")
    try:
        key.verify(signature_bytes, signed, padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise Forbidden("the signature does not match") from None


def string_to_sign(message: dict) -> bytes:
    fields = SIGNED_FIELDS.get(text(message.get("Type")) or "")
    if fields is None:
        raise Forbidden("unknown SNS message type")
    lines = []
    for name in fields:
        value = message.get(name)
        if value is None and name in OPTIONAL_FIELDS:
            continue
        if not isinstance(value, str):
            raise Forbidden(f"the signed field {name} is missing")
        lines.append(f"{name}\n{value}\n")
    return "".join(lines).encode()


def is_sns_certificate_url(url: object) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return (
        parts.scheme == "https"
        and parts.hostname is not None
        and CERT_HOST.fullmatch(parts.hostname) is not None
        and parts.username is None
        and parts.port in (None, 443)
        and parts.path.endswith(".pem")
    )


def certificate(url: object, settings: Settings, now: datetime) -> x509.Certificate:
    """The signing certificate: from SES_SNS_CERT_FILE if set, else downloaded once and
    cached. The URL must be SNS's in both cases, so a forged URL is refused either way."""
    if not is_sns_certificate_url(url):
        raise Forbidden("the signing certificate URL is not Amazon SNS's")
    if settings.ses_sns_cert_file is not None:
        cert = _load(settings.ses_sns_cert_file.read_bytes())
    else:
        cert = downloaded(url)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise Forbidden("the signing certificate is not valid now")
    return cert


@lru_cache(maxsize=32)
def _load(pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise Unavailable("the signing certificate is not PEM") from None


@lru_cache(maxsize=16)  # SNS signs with a handful of certificates; failures are not cached
def downloaded(url: str) -> x509.Certificate:
    return _load(fetch(url))


def fetch(url: str) -> bytes:
    """GET the certificate over verified HTTPS, without following redirects or proxies."""
    parts = urlsplit(url)
    connection = http.client.HTTPSConnection(parts.hostname or "", timeout=FETCH_TIMEOUT)
    try:
        connection.request("GET", parts.path)
        response = connection.getresponse()
        if response.status != 200:
            raise Unavailable(f"the signing certificate answered {response.status}")
        return response.read(MAX_CERT_BYTES)
    except (OSError, http.client.HTTPException) as exc:
        raise Unavailable(f"the signing certificate did not load: {exc}") from None
    finally:
        connection.close()


def _events(message: dict) -> list[Event]:
    """One event per recipient of an SES bounce or complaint notification."""
    notice = load_json(message["Message"].encode())
    if not isinstance(notice, dict):
        raise Malformed("the SES notification is not a JSON object")
    # notificationType with SES notifications, eventType with SES event publishing.
    kind_name = notice.get("notificationType") or notice.get("eventType")
    if kind_name == "Bounce":
        report = notice.get("bounce")
        if not isinstance(report, dict):
            raise Malformed("a bounce without its bounce object")
        kind = BOUNCE_KINDS.get(text(report.get("bounceType")) or "", EventKind.OTHER)
        recipients = report.get("bouncedRecipients")
        summary = f"{report.get('bounceType')}/{report.get('bounceSubType')}"
    elif kind_name == "Complaint":
        report = notice.get("complaint")
        if not isinstance(report, dict):
            raise Malformed("a complaint without its complaint object")
        kind = EventKind.COMPLAINT
        recipients = report.get("complainedRecipients")
        summary = f"complaint/{report.get('complaintFeedbackType') or 'unspecified'}"
    else:
        return []  # deliveries, sends, opens: nothing to act on
    if not isinstance(recipients, list):
        raise Malformed("the notification lists no recipients")
    occurred = parse_time(report.get("timestamp"))
    events = []
    # The event id is SNS's MessageId and the recipient's place in it: stable across SNS's
    # retries (the message is signed, so it is the same), and no address in clear.
    for number, recipient in enumerate(recipients):
        if not isinstance(recipient, dict):
            raise Malformed("a recipient is not an object")
        detail = text(recipient.get("diagnosticCode"))
        events.append(
            Event.read(
                provider=NAME,
                event_id=f"{message['MessageId']}:{number}",
                kind=kind,
                email=recipient.get("emailAddress"),
                occurred_at=occurred,
                detail=f"{summary}: {detail}" if detail else summary,
                message_id=_message_id(notice),
            )
        )
    return events


def _message_id(notice: dict) -> object:
    """The Message-ID header of the email reported on (SES's own `mail.messageId` is not it)."""
    mail = notice.get("mail")
    headers = mail.get("commonHeaders") if isinstance(mail, dict) else None
    return headers.get("messageId") if isinstance(headers, dict) else None

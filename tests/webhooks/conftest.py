"""Fixtures of the webhook tests: the signing keys, the settings that enable every provider,
and Ann, a subscriber with the guide sent and the drip waiting."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask
from flask.testing import FlaskClient

from tests.helpers import api_signup, dispatch_inline
from tests.webhooks.payloads import (
    ANN,
    MAILGUN_KEY,
    POSTMARK_TOKEN,
    PROVIDERS,
    TOPIC,
    Keys,
    State,
    Webhook,
    self_signed,
    state,
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


@pytest.fixture(params=PROVIDERS)
def webhook(request: pytest.FixtureRequest, client: FlaskClient, keys: Keys) -> Webhook:
    return Webhook(request.param, client, keys)


@pytest.fixture
def ann(app: Flask, client: FlaskClient) -> State:
    """Ann signed up and got the guide; the next step of the drip waits."""
    assert api_signup(client, ANN, first_name="Ann").status_code == 202
    assert dispatch_inline(app) == ["sent"]
    before = state(app)
    assert before == State("active", 1, 0, 0)
    return before

"""Mailgun: signature age, tokens never used twice, odd bodies."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient

from tests.webhooks.payloads import (
    ANN,
    MAILGUN_COMPLAINED,
    MAILGUN_FAILED,
    MAILGUN_KEY,
    Keys,
    State,
    Webhook,
    mailgun_request,
    mailgun_signature,
    state,
)


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

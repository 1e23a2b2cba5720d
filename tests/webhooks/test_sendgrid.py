"""SendGrid: the ECDSA signature over timestamp and raw body, batches."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

from flask import Flask

from tests.webhooks.payloads import (
    ANN,
    SENDGRID_EVENTS,
    Keys,
    State,
    Webhook,
    sendgrid_headers,
    sendgrid_request,
    state,
)


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

"""Postmark: the token, as a Basic-auth password or a header."""

from __future__ import annotations

from flask import Flask

from tests.webhooks.payloads import (
    ANN,
    POSTMARK_TOKEN,
    Keys,
    State,
    Webhook,
    postmark_request,
    state,
)


def test_postmark_accepts_the_token_header_too(app: Flask, ann: State, keys: Keys, client):
    body, _ = postmark_request(keys, "complaint", 0, ANN, "none")
    response = Webhook("postmark", client, keys).post(body, {"X-Postmark-Token": POSTMARK_TOKEN})
    assert response.status_code == 200 and state(app).status == "complained"

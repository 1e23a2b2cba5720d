"""Retry-After is an order to wait: only 429 (and 503) answers carry it, never a 202 or a
422 of a rate-limited route, which still carry the X-RateLimit-* counts."""

from __future__ import annotations

from flask import Flask

from tests.helpers import api_signup, submit_form


def test_only_the_refusal_says_when_to_retry(limited_app: Flask):
    client = limited_app.test_client()
    accepted = [api_signup(client, "ann@example.com") for _ in range(5)]
    invalid = client.post("/api/subscribe", json={"email": "cy@example.com"})  # no consent
    form = submit_form(client, email="bea@example.com")
    malformed = client.post(
        "/api/subscribe", data=b"{", headers={"Content-Type": "application/json"}
    )
    refused = api_signup(client, "ann@example.com")

    assert [a.status_code for a in accepted] == [202] * 5
    assert (invalid.status_code, form.status_code, malformed.status_code) == (422, 303, 400)
    for answer in [*accepted, invalid, form, malformed]:
        assert "Retry-After" not in answer.headers, answer.status
        assert answer.headers["X-RateLimit-Remaining"].isdigit()  # the counts stay
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0

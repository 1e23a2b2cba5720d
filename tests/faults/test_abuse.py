"""Enumeration and abuse: one answer for every address state, size checked before parsing."""

from __future__ import annotations

from sqlalchemy import select

from service.extensions import db
from service.models import Subscriber, SubscriberStatus
from tests.helpers import csrf_token, dispatch_inline, outbox_messages

VOLATILE = {"Date", "Set-Cookie", "Vary"}


def answer(response) -> tuple:
    headers = sorted((k, v) for k, v in response.headers.items() if k not in VOLATILE)
    return response.status_code, headers, response.get_data()


def unsubscribe(client, outbox, app, address: str) -> None:
    """One-click unsubscribe from the guide's header, as a mail client does it (RFC 8058)."""
    dispatch_inline(app)
    [guide] = [m for m in outbox_messages(outbox) if m["To"].addresses[0].addr_spec == address]
    url = guide["List-Unsubscribe"].strip("<>").removeprefix("https://news.example.org")
    one_click = client.post(
        url,
        data=b"List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert one_click.status_code == 200, one_click.get_data(as_text=True)[:300]
    with app.app_context():
        status = db.session.scalars(select(Subscriber.status).where(Subscriber.email == address))
        assert status.one() == SubscriberStatus.UNSUBSCRIBED


def test_the_api_answers_new_active_and_unsubscribed_addresses_byte_for_byte_alike(
    app, client, outbox
):
    def post(address: str):
        return answer(client.post("/api/subscribe", json={"email": address, "consent": True}))

    post("old@example.com")
    unsubscribe(client, outbox, app, "old@example.com")
    post("active@example.com")
    new, active, gone = post("new@example.com"), post("active@example.com"), post("old@example.com")
    assert new == active == gone


def test_the_form_answers_new_active_and_unsubscribed_addresses_alike_but_for_the_token(
    app, client, outbox
):
    def post(address: str):
        data = {"csrf_token": csrf_token(client), "email": address, "consent": "yes"}
        return answer(client.post("/subscribe", data=data))

    post("old@example.com")
    unsubscribe(client, outbox, app, "old@example.com")
    post("active@example.com")
    new, active, gone = post("new@example.com"), post("active@example.com"), post("old@example.com")
    assert new == active == gone


def test_an_oversized_body_is_refused_before_it_is_parsed(app, client):
    broken_json = b"{" * 20_000  # parsed, this would be a 400
    response = client.post("/api/subscribe", data=broken_json, content_type="application/json")
    assert response.status_code == 413
    form = client.post(
        "/subscribe",
        data=b"email=" + b"%" * 20_000,
        content_type="application/x-www-form-urlencoded",
    )
    assert form.status_code == 413

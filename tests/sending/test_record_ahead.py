"""On PostgreSQL a batch sends a row's record and reads its answer only after the next row is
rendered, so the server's work overlaps the worker's. What may not move: the answer is in
before the next message goes to the SMTP server, so at most one accepted send is unrecorded
at any moment (the kill tests' evidence counts on it), and before the next row's re-check,
which reads that row as the record's statement saw it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from service.core.extensions import db
from service.core.models import EmailStatus, ScheduledEmail
from service.sending import delivery, mime, sent_record
from service.sending.context import for_app
from service.sending.dispatch import claim_due, deliver_batch
from tests.helpers import api_signup

pytestmark = pytest.mark.postgres


class Order:
    """What happened, in order: records sent and answered, rows rendered and sent."""

    def __init__(self, monkeypatch, app) -> None:
        self.events: list[str] = []
        self.ids: dict[int, str] = {}
        send, answer, render = sent_record.send, sent_record.answer, delivery.render_for

        def sending(conn, values, peek):
            self.events.append(f"record {self.ids[values['row_id']]} sent")
            sent = send(conn, values, peek)
            sent.row = self.ids[values["row_id"]]
            return sent

        def answering(sent):
            self.events.append(f"record {sent.row} answered")
            return answer(sent)

        def rendering(ctx, email, subscriber):
            self.events.append(f"render {subscriber.email.split('@')[0]}")
            return render(ctx, email, subscriber)

        def writing(rendered, **headers):
            self.events.append(f"write {headers['to_address'].split('@')[0]}")
            return write(rendered, **headers)

        write = mime.message_bytes
        monkeypatch.setattr(mime, "message_bytes", writing)
        monkeypatch.setattr(sent_record, "send", sending)
        monkeypatch.setattr(sent_record, "answer", answering)
        monkeypatch.setattr(delivery, "render_for", rendering)

    def wrap(self, transport):
        real = transport.send

        def send(msg, sender, recipient, step=None):
            self.events.append(f"smtp {recipient.split('@')[0]}")
            return real(msg, sender, recipient, step)

        return send


def test_a_record_is_answered_after_the_next_render_and_before_the_next_send(pg_app, monkeypatch):
    client = pg_app.test_client()
    for name in ("ann", "bob", "cy"):
        assert api_signup(client, f"{name}@example.com").status_code == 202
    order = Order(monkeypatch, pg_app)
    with pg_app.app_context():
        ctx = for_app(pg_app)
        ids = claim_due(ctx, ctx.now())
        for email in db.session.scalars(select(ScheduledEmail).where(ScheduledEmail.id.in_(ids))):
            order.ids[email.id] = email.subscriber.email.split("@")[0]
        monkeypatch.setattr(ctx.transport, "send", order.wrap(ctx.transport))
        assert deliver_batch(ctx, ids, lambda: False) == 3
        statuses = db.session.scalars(
            select(ScheduledEmail.status).where(ScheduledEmail.id.in_(ids))
        ).all()
    assert statuses == [EmailStatus.SENT] * 3
    assert order.events == [
        "render ann",
        "write ann",
        "smtp ann",  # the transport reads the bytes written: written once, as sent
        "record ann sent",
        "render bob",  # while ann's record runs on the server
        "write bob",
        "record ann answered",
        "smtp bob",
        "record bob sent",
        "render cy",
        "write cy",
        "record bob answered",
        "smtp cy",
        "record cy sent",
        "record cy answered",  # the batch's last: answered before its connection goes back
    ]

"""What goes into each email: its template, its context, its links, its MIME message."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage

from flask import Flask

from . import runtime, tokens
from .message import build_message
from .models import Purpose, ScheduledEmail, Subscriber
from .rendering import RenderedEmail, render_email
from .sequence import Sequence


def links(app: Flask, subscriber: tokens.Holder) -> dict[str, str]:
    settings = runtime.settings(app)
    keys, base = settings.secret_keys, settings.public_url
    return {
        "unsubscribe_url": f"{base}/unsubscribe/"
        + tokens.make_token(keys, tokens.UNSUBSCRIBE, subscriber),
        "guide_url": f"{base}/guide/" + tokens.make_token(keys, tokens.GUIDE, subscriber),
        "confirm_url": f"{base}/confirm/"
        + tokens.make_timed_token(keys, tokens.CONFIRM, subscriber),
    }


def template_for(email: ScheduledEmail, sequence: Sequence) -> str | None:
    """The template folder of a scheduled email; None when its step left the sequence."""
    if email.purpose == Purpose.CONFIRM:
        return "confirm"
    if email.purpose == Purpose.RESEND:
        return sequence.first.template
    step = sequence.step(email.step_id)
    return step.template if step else None


def context(
    app: Flask, sequence: Sequence, subscriber: Subscriber, template: str, preheader: str = ""
) -> dict:
    settings = runtime.settings(app)
    urls = links(app, subscriber)
    if template != "confirm":
        urls.pop("confirm_url")
    return {
        **urls,
        "first_name": subscriber.first_name or "",
        "greeting_name": subscriber.first_name or "there",
        "email": subscriber.email,
        "signed_up_on": f"{subscriber.created_at:%B} {subscriber.created_at.day}, "
        f"{subscriber.created_at:%Y}",
        "public_url": settings.public_url,
        "postal_address": sequence.postal_address,
        "sender_name": runtime.mail_from(app).partition("<")[0].strip().strip('"'),
        "guide": sequence.guide,
        "brand": sequence.brand,
        "preheader": preheader,
    }


def render_for(app: Flask, email: ScheduledEmail, subscriber: Subscriber) -> RenderedEmail | None:
    sequence = runtime.sequence(app)
    template = template_for(email, sequence)
    if template is None:
        return None
    step = sequence.step(email.step_id)
    preheader = step.preheader if step else ""
    ctx = context(app, sequence, subscriber, template, preheader)
    return render_email(template, ctx, runtime.settings(app).templates_dir)


def smtp_address(address: str) -> str:
    """The envelope form: an IDN domain in ASCII (punycode) where the local part allows it."""
    local, _, domain = address.rpartition("@")
    if not local.isascii() or domain.isascii():
        return address
    return f"{local}@{domain.encode('idna').decode('ascii')}"


def compose(
    app: Flask,
    email: ScheduledEmail,
    subscriber: Subscriber,
    rendered: RenderedEmail,
    now: datetime,
) -> tuple[EmailMessage, str, str]:
    """The message and its envelope (sender, recipient)."""
    sender = runtime.mail_from(app)
    recipient = smtp_address(subscriber.email)
    msg = build_message(
        rendered,
        mail_from=sender,
        to_address=recipient,
        to_name=subscriber.first_name,
        message_id=email.message_id,
        unsubscribe_url=links(app, subscriber)["unsubscribe_url"],
        date=now,
    )
    envelope_from = sender.rpartition("<")[2].rstrip(">").strip() if "<" in sender else sender
    return msg, envelope_from, recipient

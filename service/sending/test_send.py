"""An owner's "Send me a test": one step rendered exactly as the worker renders it (the
compose path), to the owner's own address, "[Test]" in the subject. No row is written: a
test counts in no subscriber figure."""

from __future__ import annotations

from dataclasses import replace

from ..content.broadcast_body import BroadcastText
from ..core.models import Purpose, ScheduledEmail
from .compose import compose, render_broadcast_text, render_for
from .context import Context
from .message import new_message_id
from .sequence_check import sample_subscriber

PREFIX = "[Test] "


def send_test(ctx: Context, step_id: str, address: str) -> str:
    """Send the step (from `ctx.content`) to `address`; the subject it went out with.
    KeyError: no such step. The transport's DeliveryError passes up."""
    if ctx.content.step(step_id) is None:
        raise KeyError(step_id)
    subscriber = sample_subscriber()  # in memory only, never added to the session
    subscriber.email = address
    email = ScheduledEmail(
        purpose=Purpose.TEST, step_id=step_id, message_id=new_message_id(ctx.sender)
    )
    rendered = render_for(ctx, email, subscriber)
    if rendered is None:
        raise KeyError(step_id)
    rendered = replace(rendered, subject=PREFIX + rendered.subject)
    msg, sender, recipient = compose(ctx, email, subscriber, rendered)
    ctx.transport.send(msg, sender, recipient, step_id)
    return rendered.subject


def send_broadcast_test(ctx: Context, text: BroadcastText, address: str) -> str:
    """A broadcast's text to `address` as a test, "[Test]" in the subject; no row written."""
    subscriber = sample_subscriber()
    subscriber.email = address
    email = ScheduledEmail(purpose=Purpose.TEST, message_id=new_message_id(ctx.sender))
    rendered = render_broadcast_text(ctx, text, subscriber)
    rendered = replace(rendered, subject=PREFIX + rendered.subject)
    msg, sender, recipient = compose(ctx, email, subscriber, rendered)
    ctx.transport.send(msg, sender, recipient, "broadcast-test")
    return rendered.subject

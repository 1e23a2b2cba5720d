"""What goes into each email: its template, its context, its links, its MIME message."""

from __future__ import annotations

from ..content.broadcast_body import BroadcastText, render_broadcast
from ..content.guide_pages import guide_for_templates
from ..content.rendering import RenderedEmail, render_email
from ..content.sequence import Sequence
from ..core import tokens
from ..core.extensions import db
from ..core.models import Broadcast, Purpose, ScheduledEmail, Subscriber
from ..core.settings import Settings
from .click_links import track_clicks
from .context import Context
from .mime import Outgoing


def links(
    settings: Settings, subscriber: tokens.Holder, magnet_id: int | None = None
) -> dict[str, str]:
    """The links of one email; its unsubscribe link names the email's magnet, so the page
    can offer to stop only that one."""
    keys, base = settings.secret_keys, settings.public_url
    return {
        "unsubscribe_url": f"{base}/unsubscribe/"
        + tokens.make_token(keys, tokens.UNSUBSCRIBE, subscriber, magnet_id),
        "guide_url": f"{base}/guide/" + tokens.make_token(keys, tokens.GUIDE, subscriber),
        "confirm_url": f"{base}/confirm/"
        + tokens.make_timed_token(keys, tokens.CONFIRM, subscriber),
    }


def magnet_guide_url(settings: Settings, subscriber: tokens.Holder, magnet_id: int) -> str:
    """Another magnet's guide link: its token is good for that magnet's guide only."""
    token = tokens.make_token(settings.secret_keys, tokens.guide_purpose(magnet_id), subscriber)
    return f"{settings.public_url}/guide/{token}?m={magnet_id}"


def template_for(email: ScheduledEmail, sequence: Sequence) -> str | None:
    """The template folder of a scheduled email; None when its step left the sequence."""
    if email.purpose == Purpose.CONFIRM:
        return "confirm"
    if email.purpose == Purpose.RESEND:
        return sequence.first.template
    step = sequence.step(email.step_id)
    return step.template if step else None


def context(
    ctx: Context,
    subscriber: Subscriber,
    template: str,
    preheader: str = "",
    magnet_id: int | None = None,
) -> dict:
    """The template variables of one email to one subscriber."""
    urls = links(ctx.settings, subscriber, magnet_id)
    if not ctx.default_magnet and ctx.magnet_id is not None:
        urls["guide_url"] = magnet_guide_url(ctx.settings, subscriber, ctx.magnet_id)
    if template != "confirm":
        urls.pop("confirm_url")
    return {
        **urls,
        "first_name": subscriber.first_name or "",
        "greeting_name": subscriber.first_name or "there",
        "email": subscriber.email,
        "signed_up_on": f"{subscriber.created_at:%B} {subscriber.created_at.day}, "
        f"{subscriber.created_at:%Y}",
        "public_url": ctx.settings.public_url,
        "postal_address": ctx.content.postal_address,
        "sender_name": ctx.sender.partition("<")[0].strip().strip('"'),
        "guide": guide_for_templates(ctx.settings, ctx.content.guide, ctx.guide_key),
        "brand": ctx.content.brand,
        "preheader": preheader,
    }


def render_for(ctx: Context, email: ScheduledEmail, subscriber: Subscriber) -> RenderedEmail | None:
    """The email rendered from the context's content snapshot; None when its step left."""
    template = template_for(email, ctx.content)
    if template is None:
        return None
    step = ctx.content.step(email.step_id)
    preheader = step.preheader if step else ""
    variables = context(ctx, subscriber, template, preheader, email.magnet_id)
    return render_email(template, variables, ctx.content.templates)


def render_broadcast_for(
    ctx: Context, email: ScheduledEmail, subscriber: Subscriber
) -> RenderedEmail:
    """A broadcast row's email: the broadcast's text in the default magnet's `_base` layout,
    with the variables a step has."""
    broadcast = db.session.get_one(Broadcast, email.broadcast_id)
    text = BroadcastText(
        broadcast.subject, broadcast.body_md, broadcast.body_html, broadcast.body_txt
    )
    return render_broadcast_text(ctx, text, subscriber)


def render_broadcast_text(
    ctx: Context, text: BroadcastText, subscriber: Subscriber
) -> RenderedEmail:
    """A broadcast's text for one subscriber (a row's, a preview's or a test's)."""
    variables = context(ctx, subscriber, "broadcast")
    return render_broadcast(text, variables, ctx.content.templates)


def smtp_address(address: str) -> str:
    """The envelope form: an IDN domain in ASCII (punycode) where the local part allows it."""
    local, _, domain = address.rpartition("@")
    if not local.isascii() or domain.isascii():
        return address
    return f"{local}@{domain.encode('idna').decode('ascii')}"


def compose(
    ctx: Context, email: ScheduledEmail, subscriber: Subscriber, rendered: RenderedEmail
) -> tuple[Outgoing, str, str]:
    """The message and its envelope (sender, recipient), dated now; its links go through the
    click redirect where click_links says so."""
    recipient = smtp_address(subscriber.email)
    sender = ctx.sender
    envelope_from = sender.rpartition("<")[2].rstrip(">").strip() if "<" in sender else sender
    msg = Outgoing(
        track_clicks(ctx.settings, email, rendered),
        mail_from=sender,
        to_address=recipient,
        to_name=subscriber.first_name,
        message_id=email.message_id,
        unsubscribe_url=links(ctx.settings, subscriber, email.magnet_id)["unsubscribe_url"],
        date=ctx.now(),
        sender=envelope_from,
        recipient=recipient,
    )
    return msg, envelope_from, recipient

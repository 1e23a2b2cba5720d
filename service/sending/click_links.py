"""Which links of an email go through the click redirect (`/r/<token>`), and their URLs."""

from __future__ import annotations

from ..content.link_rewriting import rewrite_links
from ..content.rendering import RenderedEmail
from ..core import click_tokens
from ..core.models import Purpose, ScheduledEmail
from ..core.settings import Settings

# Sequence emails and broadcasts. Not the confirmation: it goes out before consent
# is complete, and its one link is the confirmation itself.
TRACKED = frozenset({Purpose.DRIP, Purpose.RESEND, Purpose.BROADCAST})
# Our own links that carry a token already: unsubscribing must stay one step from the
# email, and guide downloads are counted by the guide link itself.
OWN_TOKEN_PATHS = ("/unsubscribe/", "/guide/", "/confirm/", "/resubscribe/", "/r/")


def track_clicks(
    settings: Settings, email: ScheduledEmail, rendered: RenderedEmail
) -> RenderedEmail:
    """The rendered email with each countable link replaced by its click redirect; as it is
    under TRACK_CLICKS=false, for other purposes, and for a row never saved (previews)."""
    if not settings.track_clicks or email.id is None or email.purpose not in TRACKED:
        return rendered
    own = tuple(settings.public_url + path for path in OWN_TOKEN_PATHS)
    keys, email_id, message_id = settings.secret_keys, email.id, email.message_id

    def redirect(url: str) -> str | None:
        if url.startswith(own) or not click_tokens.trackable(url):
            return None  # mailto:, tel:, #anchors, relative and odd links stay as written
        token = click_tokens.make(keys, email_id, message_id, url)
        return f"{settings.public_url}/r/{token}"

    return rewrite_links(rendered, redirect)

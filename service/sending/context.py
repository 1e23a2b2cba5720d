"""What a use case is handed: the settings, the content snapshot in force, the sender, the
mail transport and the clock. Built once per request (web/context.py) and once per task
(worker/tasks.py), then passed on: nothing below reaches for the app or re-reads the file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from flask import Flask

from ..content.published import InForce, Published
from ..content.sequence import Sequence
from ..core.clock import utcnow
from ..core.settings import Settings, settings_of
from .mime import Outgoing
from .transport import SendResult, make_transport

PUBLISHED = "leadmagnet.published"  # what each magnet has in force, kept on the app
TRANSPORT = "leadmagnet.transport"  # one per process: the SMTP connection is reused


class Transport(Protocol):
    """Where mail goes: SmtpTransport or FileTransport (or a test's own). send() raises
    transport.DeliveryError for a send that did not happen."""

    def send(
        self, msg: Outgoing, sender: str, recipient: str, step: str | None = None
    ) -> SendResult:
        """Send (or write) the message; `step` names it where the transport shows names."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Context:
    settings: Settings
    content: Sequence  # one snapshot: a task renders and schedules from this same version
    sender: str  # MAIL_FROM, or the sequence's [sender] from
    transport: Transport
    clock: Callable[[], datetime] = utcnow
    magnet_id: int | None = None  # whose content this is (None: no magnets table yet)
    default_magnet: bool = True  # the default magnet's (GET /, links without a magnet)
    guide_key: str | None = None  # the magnet's uploaded guide in the store, if any
    published: Published | None = field(default=None, repr=False, compare=False)

    def now(self) -> datetime:
        return self.clock()

    def for_magnet(self, magnet_id: int | None) -> Context:
        """This context with that magnet's published content (and its sender) in force, so
        code below works on `ctx.content` whichever magnet an email belongs to. None: the
        default magnet. Raises content.published.NoContent for a magnet without content."""
        if (magnet_id is not None and magnet_id == self.magnet_id) or self.published is None:
            return self
        found = self.published.content(magnet_id)
        if found.magnet_id == self.magnet_id:
            return self
        return _with(self, found)

    def forget_published(self) -> None:
        """After a publish: every context of this app reads the published versions again."""
        if self.published is not None:
            self.published.forget()


def for_app(app: Flask) -> Context:
    """A context for one request or task: the default magnet's content as it is now."""
    settings = settings_of(app)
    published = published_of(app)
    found = published.content(None)
    ctx = Context(
        settings=settings,
        content=found.content,
        sender=settings.mail_from or found.content.mail_from,
        transport=transport_of(app),
        published=published,
    )
    return _with(ctx, found)


def for_task(app: Flask) -> Context:
    """A context for one worker task: which version each magnet has published is read
    again now, not taken from the last few seconds' view a web process keeps, so a task
    that starts after a publish renders and schedules from the new version."""
    published_of(app).forget()
    return for_app(app)


def _with(ctx: Context, found: InForce) -> Context:
    return replace(
        ctx,
        content=found.content,
        sender=ctx.settings.mail_from or found.content.mail_from,
        magnet_id=found.magnet_id,
        default_magnet=found.is_default,
        guide_key=found.guide_key,
    )


def published_of(app: Flask) -> Published:
    found: Published | None = app.extensions.get(PUBLISHED)
    if found is None:
        found = app.extensions[PUBLISHED] = Published(settings_of(app))
    return found


def current_content(app: Flask) -> Sequence:
    """The sequence file as it is now (checked at start: create_app refuses a broken one)."""
    return published_of(app).file_content()


def transport_of(app: Flask) -> Transport:
    """Created on first use, so a forked worker child opens its own SMTP connection."""
    found: Transport | None = app.extensions.get(TRANSPORT)
    if found is None:
        settings = settings_of(app)
        found = make_transport(settings.email_url, settings.dkim)
        app.extensions[TRANSPORT] = found
    return found

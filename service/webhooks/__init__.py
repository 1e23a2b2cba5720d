"""Bounce and complaint webhooks: one Provider per mail provider, one normalized event model."""

from __future__ import annotations

from .mailgun import Mailgun
from .postmark import Postmark
from .provider import Provider
from .sendgrid import SendGrid
from .ses import Ses

PROVIDERS: dict[str, Provider] = {p.name: p for p in (Ses(), Postmark(), Mailgun(), SendGrid())}

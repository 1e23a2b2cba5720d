"""Bounce and complaint webhooks: one module per mail provider, one normalized event model."""

from __future__ import annotations

from types import ModuleType

from . import mailgun, postmark, sendgrid, ses

# Each provider module has NAME, configured(settings) and receive(body, headers, settings, now).
PROVIDERS: dict[str, ModuleType] = {m.NAME: m for m in (ses, postmark, mailgun, sendgrid)}

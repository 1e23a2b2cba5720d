"""What a mail provider's webhook is to the service: a name, a setting that enables it, and
a reader that verifies a request and turns its payload into normalized events."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from werkzeug.datastructures import Headers

from ..core.settings import Settings
from .normalized import Event


class Provider(Protocol):
    name: str  # the last part of its URL, /webhooks/<name>, and WebhookEvent.provider

    def configured(self, settings: Settings) -> bool:
        """Whether its setting is given: an unconfigured provider's URL answers 404."""
        ...

    def receive(
        self, body: bytes, headers: Headers, settings: Settings, now: datetime
    ) -> list[Event]:
        """The request's events; raises Forbidden (not provably from the provider),
        Malformed (unreadable) or Unavailable (cannot be checked now)."""
        ...

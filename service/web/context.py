"""The request's context: built on first use and kept for the rest of the request, so one
request sees one version of the content whatever happens to the file meanwhile."""

from __future__ import annotations

from flask import current_app, g

from ..core.settings import Settings, settings_of
from ..sending.context import Context, for_app


def current() -> Context:
    """This request's context (made once, on first use)."""
    ctx: Context | None = g.get("leadmagnet_context")
    if ctx is None:
        ctx = g.leadmagnet_context = for_app(current_app)
    return ctx


def settings() -> Settings:
    """The app's settings: without building a context (no content read, no transport)."""
    return settings_of(current_app)

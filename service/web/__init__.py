"""HTTP: the blueprints, the error pages and the headers every answer carries."""

from flask import Flask

from . import (
    admin,
    admin_broadcast_new,  # noqa: F401 (its routes join admin's blueprint)
    admin_broadcasts,  # noqa: F401 (its routes join admin's blueprint when imported)
    admin_editor,  # noqa: F401  (its routes join admin's blueprint)
    admin_magnets,  # noqa: F401
    api,
    clicks,
    cors,
    embed,
    errors,
    favicon,
    health,
    links,
    login,
    metrics,
    openapi,
    outbox,
    ratelimits,
    security,
    signup,
    webhooks,
)
from .context import current


def register(app: Flask) -> None:
    for module in (signup, api, openapi, links, clicks, health, metrics, webhooks, outbox):
        app.register_blueprint(module.bp)
    for module in (login, admin, embed):  # the owner's view and the embeddable form
        app.register_blueprint(module.bp)
    app.register_blueprint(favicon.bp)
    cors.register(app)
    errors.register(app)
    security.register(app)
    ratelimits.register(app)

    @app.context_processor
    def brand() -> dict:
        sequence = current().content
        return {"brand": sequence.brand, "consent_text": sequence.consent.text}

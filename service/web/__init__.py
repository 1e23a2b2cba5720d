"""HTTP: the blueprints and the error pages."""

from flask import Flask

from .. import runtime
from . import api, errors, health, links, signup


def register(app: Flask) -> None:
    for module in (signup, api, links, health):
        app.register_blueprint(module.bp)
    errors.register(app)

    @app.context_processor
    def brand() -> dict:
        return {"brand": runtime.sequence(app).brand}

"""POST /webhooks/<provider>: bounce and complaint reports from the mail provider."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, jsonify, request
from flask.typing import ResponseReturnValue

from ..core.extensions import csrf
from ..core.settings import Settings
from ..webhooks import PROVIDERS, Provider
from ..webhooks.events import apply
from ..webhooks.normalized import Event, Forbidden, Malformed, Unavailable
from .context import current

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
log = logging.getLogger(__name__)
# Above the app's 16 KiB signup limit: an SES notice carries the mail's headers, and
# SendGrid posts events in batches.
MAX_BODY = 1024 * 1024


@bp.post("/<provider>")
@csrf.exempt  # providers post without cookies: the signature or token is the proof
def receive(provider: str) -> ResponseReturnValue:
    found = PROVIDERS.get(provider)
    ctx = current()
    settings = ctx.settings
    if found is None or not found.configured(settings):
        abort(404)  # a provider without its key is not configured: there is nothing here
    request.max_content_length = MAX_BODY
    body = request.get_data(cache=False)
    try:
        accepted = apply(ctx, _events(found, body, settings))
    except Forbidden as exc:
        log.warning("%s webhook refused: %s", provider, exc)
        return jsonify({"error": "the request is not signed by the provider"}), 403
    except Malformed as exc:
        log.warning("%s webhook unreadable: %s", provider, exc)
        return jsonify({"error": f"the request could not be read: {exc}"}), 400
    except Unavailable as exc:
        log.error("%s webhook not checked: %s", provider, exc)
        return jsonify({"error": "the request cannot be checked now; try again"}), 503
    return jsonify({"accepted": accepted}), 200


def _events(provider: Provider, body: bytes, settings: Settings) -> list[Event]:
    try:
        return provider.receive(body, request.headers, settings, current().now())
    except (Forbidden, Malformed, Unavailable):
        raise
    except (LookupError, TypeError, ValueError, AttributeError) as exc:
        # A payload shape the parser did not foresee: the provider gets 400, not 500, and
        # the traceback is logged so the parser can learn it.
        log.exception("%s webhook payload not understood", provider.name)
        raise Malformed("the payload has an unexpected shape") from exc

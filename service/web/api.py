"""The JSON API: POST /api/subscribe."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import BadRequest

from ..capture.magnet_choice import choose_magnet
from ..capture.signup import sign_up
from ..capture.validation import validate_signup
from ..core.extensions import csrf
from .context import current
from .requestmeta import request_meta
from .signup_limits import signup_limited

bp = Blueprint("api", __name__, url_prefix="/api")


def _problem(status: int, message: str) -> ResponseReturnValue:
    return jsonify({"error": message}), status


@bp.post("/subscribe")
@csrf.exempt
@signup_limited
def subscribe() -> ResponseReturnValue:
    if not request.is_json:
        return _problem(415, "send JSON with Content-Type: application/json")
    try:
        payload = request.get_json()
    except BadRequest:
        return _problem(400, "the body is not valid JSON")
    if not isinstance(payload, dict):
        return _problem(400, "the body must be a JSON object")
    ctx = current()
    data, errors = validate_signup(
        payload, from_json=True, check_deliverability=ctx.settings.email_check_deliverability
    )
    magnet, magnet_error = choose_magnet(payload.get("magnet"))
    if magnet_error:
        errors["magnet"] = magnet_error
    if data is None or magnet_error:
        return jsonify({"errors": errors}), 422
    sign_up(ctx, data, request_meta("api", data.page_url), magnet_id=magnet.id if magnet else None)
    # The same answer whether the address is new, subscribed or gone: no enumeration.
    return jsonify({"status": "accepted"}), 202

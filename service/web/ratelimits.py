"""Signup rate limits: per client address and per mailbox, counted on acceptance."""

from collections.abc import Callable

from flask import Response, request
from werkzeug.exceptions import HTTPException

from ..core.addresses import MAX_LENGTH, mailbox_key, normalized
from ..core.extensions import limiter
from .limitkeys import hashed_key

PER_IP = "30/minute;300/hour;2000/day"
PER_ADDRESS = "5/hour;20/day"


def _address_key() -> str:
    try:
        body = request.get_json(silent=True) if request.is_json else request.form
    except HTTPException:  # too large or unreadable: the view answers that, not the limiter
        return "address:"
    value = body.get("email") if body is not None and hasattr(body, "get") else None
    if not isinstance(value, str):
        return hashed_key("address", "")
    # Per mailbox, not per spelling: "Ann+1@" to "ann+9@", in any Unicode form the
    # validator folds (fullwidth, IDN), draw on one allowance.
    # Unparseable: the view refuses it, and no allowance is used.
    address = normalized(value) or value
    return hashed_key("address", mailbox_key(address[:MAX_LENGTH]))


def _accepted(response: Response) -> bool:
    # Only signups that went through use the allowance: a visitor fixing a typo is no flood.
    return response.status_code in (202, 303)


# Shared limits: the hosted form and the JSON API draw on one allowance, not one each.
signup_limits = [
    limiter.shared_limit(PER_IP, "signup-ip", deduct_when=_accepted),
    limiter.shared_limit(
        PER_ADDRESS, "signup-address", key_func=_address_key, deduct_when=_accepted
    ),
]


def limited(view: Callable) -> Callable:
    for decorate in signup_limits:
        view = decorate(view)
    return view

"""The signup's rate limits: per client address and per mailbox, shared by the hosted form and
the JSON API, counted only on accepted signups."""

from __future__ import annotations

from flask import request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from ..core.addresses import MAX_LENGTH, mailbox_key, normalized
from .limitkeys import hashed_key
from .ratelimits import Rule, Window, client_address, limited

PER_IP = (Window(30, 60), Window(300, 3600), Window(2000, 86400))
PER_ADDRESS = (Window(5, 3600), Window(20, 86400))


def _ip_key() -> str:
    return f"signup-ip:{client_address()}"


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


signup_limited = limited(Rule(PER_IP, _ip_key), Rule(PER_ADDRESS, _address_key), counted=_accepted)

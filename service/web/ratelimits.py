"""Signup rate limits: per client address and per mailbox, counted on acceptance."""

import contextlib
from collections.abc import Callable

from email_validator import EmailNotValidError, validate_email
from flask import Response, request
from werkzeug.exceptions import HTTPException

from ..addresses import mailbox_key
from ..extensions import limiter
from .limitkeys import hashed_key

PER_IP = "30/minute;300/hour;2000/day"
PER_ADDRESS = "5/hour;20/day"


def _address_key() -> str:
    try:
        body = request.get_json(silent=True) if request.is_json else request.form
    except HTTPException:  # too large or unreadable: the view answers that, not the limiter
        return "address:"
    value = body.get("email") if hasattr(body, "get") else None
    if not isinstance(value, str):
        return hashed_key("address", "")
    # Per mailbox, not per spelling: "Ann+1@" to "ann+9@", in any Unicode form the
    # validator folds (fullwidth, IDN), draw on one allowance.
    with contextlib.suppress(EmailNotValidError):  # the view refuses it: no allowance used
        value = validate_email(value.strip(), check_deliverability=False).normalized
    return hashed_key("address", mailbox_key(value[:320]))


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

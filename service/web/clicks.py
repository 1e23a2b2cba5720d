"""The click redirect: `/r/<token>` answers 302 to the link the token was signed for, and
404 to anything else; the hit is recorded (people/clicks.py)."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, request
from flask.typing import ResponseReturnValue

from ..core.models import Automated
from ..people.clicks import follow
from .context import current

bp = Blueprint("clicks", __name__)
# Headers a browser or proxy sets when it fetches a page ahead of any click.
PREFETCH_HEADERS = ("Sec-Purpose", "Purpose", "X-Purpose", "X-Moz")


def automated_by_request() -> Automated | None:
    """What the request itself says of who is asking: a HEAD or a prefetch is no click."""
    if request.method == "HEAD":
        return Automated.HEAD
    if any("prefetch" in request.headers.get(name, "").lower() for name in PREFETCH_HEADERS):
        return Automated.PREFETCH
    return None


# No rate limit: a scanner opens every link of a message at once, and must get its answer.
@bp.route("/r/<token>", methods=["GET", "HEAD"])
def click(token: str) -> ResponseReturnValue:
    target = follow(current(), token, automated_by_request())
    if target is None:
        abort(404)
    return redirect(target, 302)

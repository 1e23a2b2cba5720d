"""The owner's sign-in: GET/POST /login, POST /logout, and what a signed-in session holds."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, abort, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from ..core.addresses import MAX_LENGTH, email_key
from ..core.clock import utcnow
from ..core.extensions import db
from ..core.models import Owner
from ..people import owners
from .limitkeys import hashed_key
from .ratelimits import Rule, Window, client_address, limited

bp = Blueprint("login", __name__)
SESSION_KEY = "owner"
# However long the browser keeps the cookie, a sign-in is good for this long.
MAX_AGE = timedelta(hours=12)
# Only failed sign-ins count. Per client, whatever the address (guessing many accounts);
# per address from one client (guessing one). Never per address alone: anyone who knows the
# owner's address could then lock the owner out, where the owner's own client, which has
# not failed, gets through.
PER_CLIENT = (Window(10, 60), Window(50, 3600))
PER_ADDRESS_AND_CLIENT = (Window(5, 60), Window(20, 3600))
# One message whatever was wrong, so the form tells nobody which addresses are owners.
REFUSED = "That email address and password do not match. Please try again."


def current_owner() -> Owner | None:
    """The signed-in owner, or None: no session, an expired one, or one made before the
    owner last signed out or changed the password (a copied cookie included)."""
    data = session.get(SESSION_KEY)
    if not isinstance(data, dict):
        return None
    owner_id, generation, at = data.get("id"), data.get("generation"), data.get("at")
    if not all(isinstance(v, int) for v in (owner_id, generation)) or not isinstance(
        at, int | float
    ):
        return None
    if utcnow().timestamp() - at > MAX_AGE.total_seconds():
        return None
    owner = db.session.get(Owner, owner_id)
    if owner is None or owner.session_generation != generation:
        return None
    return owner


def _sign_in(owner: Owner) -> None:
    # A fresh session: nothing set before the sign-in (a planted cookie, say) survives it.
    session.clear()
    session[SESSION_KEY] = {
        "id": owner.id,
        "generation": owner.session_generation,
        "at": int(utcnow().timestamp()),
    }


def _next_page(value: str | None) -> str:
    """Where to go after signing in: an /admin page of this site, never anywhere else. A
    control character (a CR LF to split the Location header) is a bad request."""
    if value and not value.isprintable():
        abort(400)
    parts = urlsplit(value or "")
    if (
        value
        and not parts.scheme
        and not parts.netloc
        and parts.path.startswith("/admin")
        and "\\" not in value
    ):
        return value
    return url_for("admin.dashboard")


def _client_key() -> str:
    return f"owner-login-client:{client_address()}"


def _address_and_client_key() -> str:
    address = email_key(request.form.get("email", ""))[:MAX_LENGTH]
    return hashed_key("owner-login", f"{address} {client_address()}")


def _refused(response: Response) -> bool:
    return response.status_code == 422


@bp.route("/login", methods=["GET", "POST"])
@limited(
    Rule(PER_CLIENT, _client_key),
    Rule(PER_ADDRESS_AND_CLIENT, _address_and_client_key),
    counted=_refused,
)
def login() -> ResponseReturnValue:
    target = _next_page(request.values.get("next"))
    if request.method == "GET":
        if current_owner() is not None:
            return redirect(target, code=303)
        return render_template("login.html", next=target, email="", error=None)
    email = request.form.get("email", "")
    owner = owners.authenticate(email, request.form.get("password", ""))
    if owner is None:
        return render_template("login.html", next=target, email=email, error=REFUSED), 422
    _sign_in(owner)
    return redirect(target, code=303)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    owner = current_owner()
    if owner is not None:
        owners.end_sessions(owner)  # a copy of this cookie, wherever it is, ends here too
    session.clear()
    return redirect(url_for("login.login"), code=303)

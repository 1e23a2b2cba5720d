"""The hosted signup page: GET /, POST /subscribe, the thank-you page."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from .. import runtime
from ..broker import nudge
from ..guide_pages import guide_for_templates
from ..signup import sign_up
from ..validation import validate_signup
from .ratelimits import limited
from .requestmeta import request_meta

bp = Blueprint("signup", __name__)


def _page(values: dict | None = None, errors: dict | None = None, status: int = 200):
    sequence = runtime.sequence()
    body = render_template(
        "signup.html",
        values=values or {},
        errors=errors or {},
        guide=guide_for_templates(runtime.settings(), sequence.guide),
        consent=sequence.consent,
    )
    return body, status


@bp.get("/")
def form() -> ResponseReturnValue:
    return _page()


@bp.post("/subscribe")
@limited
def subscribe() -> ResponseReturnValue:
    settings = runtime.settings()
    data, errors = validate_signup(
        request.form, from_json=False, check_deliverability=settings.email_check_deliverability
    )
    if data is None:
        values = {k: request.form.get(k, "") for k in ("email", "first_name")}
        return _page(values, errors, 422)
    ids = sign_up(data, request_meta("hosted-form", data.page_url))
    nudge(current_app, ids)
    return redirect(url_for("signup.thanks"), code=303)


@bp.get("/thanks")
def thanks() -> ResponseReturnValue:
    sequence = runtime.sequence()
    return render_template(
        "thanks.html",
        guide=guide_for_templates(runtime.settings(), sequence.guide),
        double_opt_in=runtime.settings().double_opt_in,
    )

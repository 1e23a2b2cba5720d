"""The hosted signup page: GET /, POST /subscribe, the thank-you page."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from ..capture.signup import sign_up
from ..capture.validation import validate_signup
from ..content.guide_pages import guide_for_templates
from .context import current
from .ratelimits import limited
from .requestmeta import request_meta

bp = Blueprint("signup", __name__)


def _page(
    values: dict | None = None, errors: dict | None = None, status: int = 200
) -> ResponseReturnValue:
    ctx = current()
    body = render_template(
        "signup.html",
        values=values or {},
        errors=errors or {},
        guide=guide_for_templates(ctx.settings, ctx.content.guide),
        consent=ctx.content.consent,
    )
    return body, status


@bp.get("/")
def form() -> ResponseReturnValue:
    return _page()


@bp.post("/subscribe")
@limited
def subscribe() -> ResponseReturnValue:
    ctx = current()
    data, errors = validate_signup(
        request.form,
        from_json=False,
        check_deliverability=ctx.settings.email_check_deliverability,
    )
    if data is None:
        values = {k: request.form.get(k, "") for k in ("email", "first_name")}
        return _page(values, errors, 422)
    sign_up(ctx, data, request_meta("hosted-form", data.page_url))
    return redirect(url_for("signup.thanks"), code=303)


@bp.get("/thanks")
def thanks() -> ResponseReturnValue:
    ctx = current()
    return render_template(
        "thanks.html",
        guide=guide_for_templates(ctx.settings, ctx.content.guide),
        double_opt_in=ctx.settings.double_opt_in,
    )

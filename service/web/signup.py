"""The hosted signup pages: GET / (the default magnet), GET /m/<slug> (any other), POST
/subscribe, the thank-you pages."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from ..capture.magnet_choice import MAX_SLUG, choose_magnet
from ..capture.signup import sign_up
from ..capture.validation import validate_signup
from ..content.guide_pages import guide_for_templates
from ..content.magnets import by_slug
from ..core.models import Magnet
from .context import current
from .requestmeta import request_meta
from .signup_limits import signup_limited

bp = Blueprint("signup", __name__)


def _page(
    magnet: Magnet | None = None,
    values: dict | None = None,
    errors: dict | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    ctx = current()
    if magnet is not None:
        ctx = ctx.for_magnet(magnet.id)
    body = render_template(
        "signup.html",
        values=values or {},
        errors=errors or {},
        guide=guide_for_templates(ctx.settings, ctx.content.guide),
        consent=ctx.content.consent,
        magnet=magnet,
    )
    return body, status


@bp.get("/")
def form() -> ResponseReturnValue:
    return _page()


def _find(slug: str) -> Magnet:
    """The magnet of a page address: 404 for none (archived ones included, see _gone)."""
    magnet = by_slug(slug) if len(slug) <= MAX_SLUG else None
    if magnet is None or magnet.published_version_id is None:
        abort(404)
    return magnet


def _gone(magnet: Magnet) -> ResponseReturnValue:
    """An archived magnet's page: links to it live on in old posts, so say so kindly."""
    return render_template("magnet_gone.html", title=magnet.title), 410


@bp.get("/m/<slug>")
def magnet_form(slug: str) -> ResponseReturnValue:
    magnet = _find(slug)
    return _gone(magnet) if magnet.archived_at else _page(magnet)


@bp.post("/subscribe")
@signup_limited
def subscribe() -> ResponseReturnValue:
    ctx = current()
    magnet, magnet_error = choose_magnet(request.form.get("magnet"))
    data, errors = validate_signup(
        request.form,
        from_json=False,
        check_deliverability=ctx.settings.email_check_deliverability,
    )
    if magnet_error:
        errors["magnet"] = magnet_error
    if data is None or magnet_error:
        values = {k: request.form.get(k, "") for k in ("email", "first_name")}
        return _page(magnet, values, errors, 422)
    sign_up(
        ctx,
        data,
        request_meta("hosted-form", data.page_url),
        magnet_id=magnet.id if magnet else None,
    )
    if magnet is not None and not magnet.is_default:
        return redirect(url_for("signup.magnet_thanks", slug=magnet.slug), code=303)
    return redirect(url_for("signup.thanks"), code=303)


def _thanks(magnet: Magnet | None) -> ResponseReturnValue:
    ctx = current()
    if magnet is not None:
        ctx = ctx.for_magnet(magnet.id)
    return render_template(
        "thanks.html",
        guide=guide_for_templates(ctx.settings, ctx.content.guide),
        double_opt_in=ctx.settings.double_opt_in,
    )


@bp.get("/thanks")
def thanks() -> ResponseReturnValue:
    return _thanks(None)


@bp.get("/m/<slug>/thanks")
def magnet_thanks(slug: str) -> ResponseReturnValue:
    magnet = _find(slug)
    return _gone(magnet) if magnet.archived_at else _thanks(magnet)
